import { createHash } from "node:crypto";
import type { DesiredEntry, DesiredReason } from "./reasons.js";

/**
 * One line two auditors compare: SHA-256 over the desired set in a canonical rendering.
 *
 * What it covers, and why: everything an auditor can reproduce from the chain plus the
 * operator's off-chain registration list, given the same finalized block per chain, the
 * same `now` and the same TTL. So each CID (ascending) is rendered with its chain-derived
 * reasons only: kind, chain id, storage contract, block number and transaction hash of
 * the PinHash, and for a demotion the instant it ends. Left out: Ponder event ids (another
 * indexer numbers logs its own way), confirmationsLeft (a view of the same finality), and
 * optimistic uploads (local knowledge no chain replay can see) unless `includeOptimistic`,
 * for comparing two replays of Quasar's own database. Pinning Service API requests are
 * always left out: no replay reads them.
 */
export type DigestOptions = { includeOptimistic?: boolean };

export type DesiredSetDigest = {
  /** "sha256:" followed by 64 hex digits. */
  digest: string;
  /** CIDs covered by the digest. */
  cids: number;
};

export function digestDesiredSet(
  entries: Iterable<DesiredEntry>,
  options: DigestOptions = {},
): DesiredSetDigest {
  const lines: string[] = [];
  for (const entry of entries) {
    const line = renderEntry(entry, options);
    if (line !== undefined) lines.push(line);
  }
  // Sort by the CID (the line's first field, which no rendering character precedes).
  lines.sort();
  const hash = createHash("sha256");
  for (const line of lines) hash.update(`${line}\n`);
  return { digest: `sha256:${hash.digest("hex")}`, cids: lines.length };
}

/** The canonical line of one CID, or undefined when none of its reasons is covered. */
export function renderEntry(entry: DesiredEntry, options: DigestOptions = {}): string | undefined {
  const parts: string[] = [];
  for (const reason of entry.reasons) {
    const part = renderReason(reason, options);
    if (part !== undefined) parts.push(part);
  }
  if (parts.length === 0) return undefined;
  parts.sort();
  return `${entry.cid}\t${parts.join(";")}`;
}

function renderReason(reason: DesiredReason, options: DigestOptions): string | undefined {
  switch (reason.kind) {
    case "optimistic":
      return options.includeOptimistic ? `optimistic ${reason.expiresAt.toISOString()}` : undefined;
    case "psa":
      // Pinning Service API requests live in this database alone and no replay reads them
      // (not even a database replay with includeOptimistic): never digested.
      return undefined;
    case "confirmed":
    case "pending":
      return `${reason.kind} ${reason.chainId} ${reason.contract} ${reason.blockNumber} ${reason.transactionHash}`;
    case "demoted":
      return `demoted ${reason.chainId} ${reason.contract} ${reason.blockNumber} ${reason.transactionHash} until ${reason.until.toISOString()}`;
  }
}
