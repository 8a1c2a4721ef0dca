import { isMissingRelation } from "@/db/errors.js";
import { type ReconcileLogEntry, readReconcileLog as readLog } from "@/db/ledger/reads.js";
import { normalizeCid } from "@/src/cid.js";
import { openDatabase, parseInstant, parseWholeNumber, toJson } from "../common.js";
import { UsageError } from "../errors.js";
import { resolveConfig } from "../settings.js";
import { formatTable } from "../table.js";

/** One row of the reconciler's reconcile_log (db/migrations/0002_ledger.ts). */
export type ReconcileLogRow = ReconcileLogEntry;

export type AuditLogOptions = {
  cid?: string;
  since?: string;
  until?: string;
  limit: string;
  json?: boolean;
};

/** Reads the reconcile log, newest first, filtered as asked. */
export async function readReconcileLog(
  options: AuditLogOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<ReconcileLogRow[]> {
  const { config } = resolveConfig(env);
  let cid: string | undefined;
  if (options.cid !== undefined) {
    try {
      cid = normalizeCid(options.cid);
    } catch (error) {
      throw new UsageError(`--cid "${options.cid}" is not a CID`, { cause: error });
    }
  }
  const since = options.since === undefined ? undefined : parseInstant(options.since, "--since");
  const until = options.until === undefined ? undefined : parseInstant(options.until, "--until");
  const limit = parseWholeNumber(options.limit, "--limit");
  const db = openDatabase(config, "quasar-audit-log");
  try {
    return await readLog(db, config.QUASAR_RECONCILER_SCHEMA, { cid, since, until, limit });
  } catch (error) {
    if (isMissingRelation(error)) {
      throw new UsageError("the reconcile log does not exist yet", {
        details: `no table ${config.QUASAR_RECONCILER_SCHEMA}.reconcile_log: has the reconciler run on this database?`,
        cause: error,
      });
    }
    throw error;
  } finally {
    await db.destroy();
  }
}

export async function runAuditLog(
  options: AuditLogOptions,
  env: Readonly<Record<string, string | undefined>>,
): Promise<void> {
  const rows = await readReconcileLog(options, env);
  if (options.json) {
    for (const row of rows) process.stdout.write(`${JSON.stringify(JSON.parse(toJson(row)))}\n`);
    return;
  }
  process.stdout.write(
    `${formatTable(
      ["AT", "BACKEND", "CID", "DECISION", "REASON", "OUTCOME", "ERROR"],
      rows.map((row) => [
        row.at.toISOString(),
        row.backendId,
        row.cid,
        row.decision,
        row.reason,
        row.outcome,
        row.error ?? "",
      ]),
    )}\n`,
  );
}
