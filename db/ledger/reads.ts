import { type Kysely, sql } from "kysely";
import type { Database } from "../database.js";
import { isPinStatus, type PinStatus } from "./pin-status.js";

/**
 * Reads of the pin ledger for the API, the CLI and the auditors (the engine's own reads sit
 * beside its writes in ledger.ts and queue.ts). `schema` is QUASAR_RECONCILER_SCHEMA.
 */

/** One backend's ledger row for a CID, labelled by backend id (never a URL). */
export type BackendPinState = {
  backendId: string;
  status: PinStatus;
  attempts: number;
  lastError: string | null;
  updatedAt: Date;
};

/** Each backend's row for each of `cids` (normalised), by CID, backends in id order. */
export async function backendStatesOf(
  db: Kysely<Database>,
  schema: string,
  cids: readonly string[],
): Promise<Map<string, BackendPinState[]>> {
  const out = new Map<string, BackendPinState[]>();
  if (cids.length === 0) return out;
  const rows = await db
    .withSchema(schema)
    .selectFrom("pin_ledger")
    .select(["backend_id", "cid", "status", "attempts", "last_error", "updated_at"])
    .where("cid", "=", sql<string>`any(${[...cids]}::text[])`)
    .orderBy("backend_id")
    .execute();
  for (const row of rows) {
    const list = out.get(row.cid) ?? [];
    list.push({
      backendId: row.backend_id,
      // The migration's check constraint allows only these; never show a client anything else.
      status: isPinStatus(row.status) ? row.status : "failed",
      attempts: row.attempts,
      lastError: row.last_error,
      updatedAt: new Date(row.updated_at),
    });
    out.set(row.cid, list);
  }
  return out;
}

/**
 * The CIDs whose pin on `backendId` Quasar owns (created, or may have created). Throws when
 * the ledger cannot be read: a caller that went on without it would take Quasar's own pins
 * for foreign ones.
 */
export async function ownedCids(
  db: Kysely<Database>,
  schema: string,
  backendId: string,
): Promise<Set<string>> {
  const rows = await db
    .withSchema(schema)
    .selectFrom("pin_ledger")
    .select("cid")
    .where("backend_id", "=", backendId)
    .where("owned", "=", true)
    .execute();
  return new Set(rows.map((row) => row.cid));
}

/** One backend's ledger in numbers, for `quasar status`. */
export type BackendLedgerSummary = {
  backendId: string;
  pinned: number;
  /** A pin command in flight. */
  pinning: number;
  /** Waiting for a worker: never attempted, or between retries. */
  queued: number;
  failed: number;
  /** Seconds the oldest pin still wanted but not pinned has waited; 0 when none. */
  lagSeconds: number;
};

/** Per backend with any ledger row: pinned, pinning, queued, failed and lag, in backend id order. */
export async function backendSummaries(
  db: Kysely<Database>,
  schema: string,
): Promise<BackendLedgerSummary[]> {
  const rows = await db
    .withSchema(schema)
    .selectFrom("pin_ledger")
    .select([
      "backend_id",
      sql<string>`count(*) filter (where status = 'pinned')::text`.as("pinned"),
      sql<string>`count(*) filter (where status = 'pinning')::text`.as("pinning"),
      sql<string>`count(*) filter (where status = 'queued')::text`.as("queued"),
      sql<string>`count(*) filter (where status = 'failed')::text`.as("failed"),
      sql<string | null>`extract(epoch from now() - min(first_queued_at)
        filter (where status in ('queued', 'pinning', 'failed')))::text`.as("lag"),
    ])
    .groupBy("backend_id")
    .orderBy("backend_id")
    .execute();
  return rows.map((row) => ({
    backendId: row.backend_id,
    pinned: Number(row.pinned),
    pinning: Number(row.pinning),
    queued: Number(row.queued),
    failed: Number(row.failed),
    lagSeconds: row.lag === null ? 0 : Math.round(Number(row.lag)),
  }));
}

/** One row of reconcile_log, for people and scripts (`quasar audit log`). */
export type ReconcileLogEntry = {
  /** int8 as decimal text. */
  id: string;
  at: Date;
  backendId: string;
  cid: string;
  decision: string;
  reason: string;
  outcome: string;
  error: string | null;
};

/** The reconcile log, newest first, at most `limit` rows, optionally of one CID and a time range. */
export async function readReconcileLog(
  db: Kysely<Database>,
  schema: string,
  filter: { cid?: string; since?: Date; until?: Date; limit: number },
): Promise<ReconcileLogEntry[]> {
  let query = db
    .withSchema(schema)
    .selectFrom("reconcile_log")
    .select([
      // Not aliased "id": ORDER BY id would then sort the text, putting "99" after "100".
      sql<string>`id::text`.as("id_text"),
      "at",
      "backend_id",
      "cid",
      "decision",
      "reason",
      "outcome",
      "error",
    ]);
  if (filter.cid !== undefined) query = query.where("cid", "=", filter.cid);
  if (filter.since !== undefined) query = query.where("at", ">=", filter.since);
  if (filter.until !== undefined) query = query.where("at", "<=", filter.until);
  const rows = await query.orderBy("id", "desc").limit(filter.limit).execute();
  return rows.map((row) => ({
    id: row.id_text,
    at: new Date(row.at),
    backendId: row.backend_id,
    cid: row.cid,
    decision: row.decision,
    reason: row.reason,
    outcome: row.outcome,
    error: row.error,
  }));
}
