import { sql } from "kysely";
import { normalizeCid } from "@/src/cid.js";
import { openDatabase, parseInstant, parseWholeNumber, toJson } from "../common.js";
import { UsageError } from "../errors.js";
import { resolveConfig } from "../settings.js";
import { formatTable } from "../table.js";

/** One row of the reconciler's reconcile_log (db/migrations/0002_ledger.ts). */
export type ReconcileLogRow = {
  id: string;
  at: Date;
  backendId: string;
  cid: string;
  decision: string;
  reason: string;
  outcome: string;
  error: string | null;
};

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
    const table = sql.ref(`${config.QUASAR_RECONCILER_SCHEMA}.reconcile_log`);
    const conditions = [sql`true`];
    if (cid !== undefined) conditions.push(sql`cid = ${cid}`);
    if (since !== undefined) conditions.push(sql`at >= ${since}`);
    if (until !== undefined) conditions.push(sql`at <= ${until}`);
    const result = await sql<{
      id: string;
      at: Date;
      backend_id: string;
      cid: string;
      decision: string;
      reason: string;
      outcome: string;
      error: string | null;
    }>`select id::text as id, at, backend_id, cid, decision, reason, outcome, error
       from ${table} where ${sql.join(conditions, sql` and `)}
       order by id desc limit ${limit}`.execute(db);
    return result.rows.map((row) => ({
      id: row.id,
      at: new Date(row.at),
      backendId: row.backend_id,
      cid: row.cid,
      decision: row.decision,
      reason: row.reason,
      outcome: row.outcome,
      error: row.error,
    }));
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === "42P01" || code === "3F000") {
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
