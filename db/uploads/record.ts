import { type Kysely, type RawBuilder, sql, Transaction } from "kysely";
import { normalizeCid } from "@/src/cid.js";
import type { Database } from "../database.js";
import { LedgerRefusedError } from "../errors.js";
import { applyChanges, type LedgerChange } from "../ledger/ledger.js";
import { relaxCommit } from "../ledger/queue.js";
import {
  decideUpload,
  optimisticExpiry,
  type UploadRecord,
  type UploadRecordOutcome,
} from "./decide.js";

/**
 * Uploads: content stored through the API, desired until created + QUASAR_PIN_TTL unless a
 * final PinHash confirms it (core/desired: "optimistic"). Append-only: a second upload of
 * one CID adds a row, and the latest expiry wins. `recordUploads` is the one writer, for
 * the API (group commit: api/batcher.ts), the benches and the tests alike.
 */

export type RecordUploadsParams = {
  /** QUASAR_RECONCILER_SCHEMA. */
  schema: string;
  /** QUASAR_PIN_TTL in milliseconds. */
  ttlMs: number;
  uploads: readonly UploadRecord[];
};

export type RecordedUpload = {
  /** The CID as stored (CIDv1 base32). */
  cid: string;
  expiresAt: Date;
  outcome: UploadRecordOutcome;
};

/**
 * Records uploads in ONE transaction (the caller's, when `db` is one): for each, the
 * optimistic pin, the desired store's dirty-queue entry, and the ledger row of its backend,
 * changed only through the ledger's state machine as decideUpload says. Either every row
 * exists afterwards or none does: the API pins only after this (record before pin), so a
 * failure leaves nothing to undo. Throws InvalidCidError for a string that is not a CID,
 * before writing anything.
 */
export async function recordUploads(
  db: Kysely<Database>,
  params: RecordUploadsParams,
): Promise<RecordedUpload[]> {
  const rows = params.uploads.map((upload) => ({
    ...upload,
    cid: normalizeCid(upload.cid),
    expiresAt: optimisticExpiry(upload.now, params.ttlMs),
  }));
  if (rows.length === 0) return [];
  const outcomes = await inTransaction(db, async (trx) => {
    const table = (name: string) => sql.id(params.schema, name);
    await sql`
      with input as (
        select * from unnest(
          ${rows.map((r) => r.cid)}::text[],
          ${rows.map((r) => r.now)}::timestamptz[],
          ${rows.map((r) => r.expiresAt)}::timestamptz[],
          ${rows.map((r) => String(r.size))}::int8[],
          ${rows.map((r) => r.uploader)}::text[],
          ${rows.map((r) => r.backendId)}::text[]
        ) as t(cid, created_at, expires_at, size, uploader, backend_id)
      ),
      optimistic as (
        insert into ${table("optimistic_pin")} (cid, created_at, expires_at, size, uploader, backend_id)
        select cid, created_at, expires_at, size, uploader, backend_id from input
      )
      insert into ${table("desired_dirty_cid")} (cid) select distinct cid from input
      on conflict do nothing`.execute(trx);
    const scoped = trx.withSchema(params.schema);
    // Only an upload the backend already holds pinned depends on the ledger's row (adopt or
    // ours); read (and lock) those rows. Every other upload records the same intent whatever
    // the row says. applyChanges locks again and re-applies an event if a concurrent
    // writer created the row meanwhile.
    const probed = rows.filter((row) => row.pinnedOnBackend);
    const current =
      probed.length === 0
        ? []
        : await scoped
            .selectFrom("pin_ledger")
            .select(["backend_id", "cid", "status", "owned"])
            .where(
              "backend_id",
              "=",
              sql<string>`any(${[...new Set(probed.map((r) => r.backendId))]}::text[])`,
            )
            .where("cid", "=", sql<string>`any(${[...new Set(probed.map((r) => r.cid))]}::text[])`)
            .orderBy("backend_id")
            .orderBy("cid")
            .forUpdate()
            .execute();
    const byKey = new Map(current.map((row) => [`${row.backend_id}\u0000${row.cid}`, row]));
    const outcomes: UploadRecordOutcome[] = [];
    const changes: LedgerChange[] = [];
    for (const row of rows) {
      const decided = decideUpload(row, byKey.get(`${row.backendId}\u0000${row.cid}`));
      outcomes.push(decided.outcome);
      if (decided.change) changes.push(decided.change);
    }
    if (changes.length === 0) return outcomes;
    const results = await applyChanges(scoped, changes, {
      now: rows[0]?.now ?? new Date(),
      pinDeadlineMs: rows[0]?.pinDeadlineMs ?? 0,
    });
    // Any refusal fails the transaction; the API's batcher then records each upload on its own.
    const refused = results.findIndex((result) => !result.applied);
    if (refused !== -1) {
      const change = changes[refused] as LedgerChange;
      throw new LedgerRefusedError(
        `the ledger refused ${change.event} for an upload of ${change.cid}`,
      );
    }
    return outcomes;
  });
  return rows.map((row, i) => ({
    cid: row.cid,
    expiresAt: row.expiresAt,
    outcome: outcomes[i] as UploadRecordOutcome,
  }));
}

/**
 * Applies the API's follow-ups of its own pins (confirmedPinChange, failedPinChange) in one
 * transaction. No WAL flush wait, as for the engine's own outcomes: the intent before the pin
 * was committed durably, so a confirmation lost in a Postgres crash only lets the engine pin
 * again (idempotent) after the grace period.
 */
export async function applyUploadFollowUps(
  db: Kysely<Database>,
  schema: string,
  changes: readonly LedgerChange[],
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const scoped = trx.withSchema(schema);
    await relaxCommit(scoped);
    // No deadline is read: neither event starts a new pin request (the row is already wanted).
    const results = await applyChanges(scoped, changes, { now: new Date(), pinDeadlineMs: 0 });
    const refused = results.findIndex((result) => !result.applied);
    if (refused !== -1) {
      const change = changes[refused] as LedgerChange;
      throw new LedgerRefusedError(`the ledger refused ${change.event} for ${change.cid}`);
    }
  });
}

/**
 * The latest expiry among the uploads of the CID in `cid` (a column of the enclosing query),
 * as a scalar subquery: several uploads of one CID, the latest wins. The desired step reads it
 * in the same statement as the CID's other inputs.
 */
export function latestOptimisticExpiryOf(schema: string, cid: RawBuilder<unknown>) {
  return sql<Date | null>`(select max(expires_at) from ${sql.id(schema, "optimistic_pin")} where cid = ${cid})`;
}

/** Latest expiry per CID among `cids` (several uploads of one CID: the latest wins). */
export async function latestOptimisticExpiries(
  db: Kysely<Database>,
  schema: string,
  cids: readonly string[],
): Promise<Map<string, Date>> {
  const result = new Map<string, Date>();
  if (cids.length === 0) return result;
  const { rows } = await sql<{ cid: string; expires_at: Date | null }>`select c.cid,
      ${latestOptimisticExpiryOf(schema, sql.ref("c.cid"))} as expires_at
    from unnest(${[...cids]}::text[]) as c(cid)`.execute(db);
  for (const row of rows)
    if (row.expires_at !== null) result.set(row.cid, new Date(row.expires_at));
  return result;
}

/** Every upload's CID and expiry (the auditors replay the desired set from them). */
export async function listOptimisticPins(
  db: Kysely<Database>,
  schema: string,
): Promise<{ cid: string; expiresAt: Date }[]> {
  const rows = await db
    .withSchema(schema)
    .selectFrom("optimistic_pin")
    .select(["cid", "expires_at"])
    .execute();
  return rows.map((row) => ({ cid: row.cid, expiresAt: new Date(row.expires_at) }));
}

/** Runs `work` in `db` when it is a transaction already, else in a new one. */
function inTransaction<T>(
  db: Kysely<Database>,
  work: (trx: Transaction<Database>) => Promise<T>,
): Promise<T> {
  return db instanceof Transaction ? work(db) : db.transaction().execute(work);
}
