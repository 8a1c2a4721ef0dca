import { type DesiredEntry, reasonToJson } from "@/core/desired/reasons.js";
import type { ReplayResult } from "./replay.js";

/**
 * What an auditor prints: the set as JSON or CSV, and one digest line to compare.
 * CSV has one row per (CID, reason) so a spreadsheet can filter by kind or contract.
 */
export const AUDIT_FORMATS = ["json", "csv"] as const;
export type AuditFormat = (typeof AUDIT_FORMATS)[number];

export const CSV_HEADER = [
  "cid",
  "kind",
  "chain_id",
  "contract",
  "block_number",
  "transaction_hash",
  "until",
] as const;

/** One CSV field: quoted when it holds a comma, quote, or line break (RFC 4180). */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

export function entriesToCsv(entries: Iterable<DesiredEntry>): string {
  const lines = [CSV_HEADER.join(",")];
  for (const entry of entries) {
    for (const reason of entry.reasons) {
      const row =
        reason.kind === "optimistic"
          ? [entry.cid, reason.kind, "", "", "", "", reason.expiresAt.toISOString()]
          : reason.kind === "psa"
            ? [entry.cid, reason.kind, "", "", "", "", ""]
            : [
                entry.cid,
                reason.kind,
                String(reason.chainId),
                reason.contract,
                reason.blockNumber.toString(),
                reason.transactionHash,
                reason.kind === "demoted" ? reason.until.toISOString() : "",
              ];
      lines.push(row.map(csvField).join(","));
    }
  }
  return `${lines.join("\n")}\n`;
}

/** The JSON document of a replay: parameters, digest, and every entry with JSON-safe reasons. */
export function replayToJson(result: ReplayResult, source: "database" | "chain") {
  return {
    source,
    chainId: result.chainId,
    toBlock: result.toBlock === null ? null : result.toBlock.toString(),
    finalizedBlock: result.finalizedBlock.toString(),
    at: result.now.toISOString(),
    events: result.eventCount,
    digest: result.digest.digest,
    cids: result.digest.cids,
    entries: result.entries.map((entry) => ({
      cid: entry.cid,
      reasons: entry.reasons.map(reasonToJson),
    })),
  };
}

/** The one line two auditors compare. */
export function digestLine(result: ReplayResult): string {
  const bound = result.toBlock === null ? "" : ` to-block ${result.toBlock}`;
  return `digest ${result.digest.digest} cids ${result.digest.cids} chain ${result.chainId} finalized ${result.finalizedBlock}${bound} at ${result.now.toISOString()}`;
}
