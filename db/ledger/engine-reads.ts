import { type Kysely, sql } from "kysely";
import type { Database } from "../database.js";
import type { LedgerRow } from "./ledger.js";
import { IN_FLIGHT_STATUSES, type PinStatus, WANTED_STATUSES } from "./pin-status.js";

/**
 * The reconciler engine's reads of the pin ledger. `db` is already scoped to the reconciler
 * schema (ledgerDb). Each answers for the given backends only, so a ledger shared with
 * backends this process does not drive is never acted on.
 */

/** Rows that decide whether Quasar may hold a pin of each of `cids` (in pages of 5,000). */
export async function ownershipRowsOf(
  db: Kysely<Database>,
  cids: readonly string[],
): Promise<{ backend_id: string; cid: string; owned: boolean; status: PinStatus }[]> {
  const out: { backend_id: string; cid: string; owned: boolean; status: PinStatus }[] = [];
  for (let i = 0; i < cids.length; i += 5_000) {
    const rows = await db
      .selectFrom("pin_ledger")
      .select(["backend_id", "cid", "owned", "status"])
      .where("cid", "=", sql<string>`any(${cids.slice(i, i + 5_000)}::text[])`)
      .execute();
    out.push(...rows);
  }
  return out;
}

/** One backend's rows for `cids`, by CID. */
export async function rowsByCid(
  db: Kysely<Database>,
  backendId: string,
  cids: readonly string[],
): Promise<Map<string, LedgerRow>> {
  const rows = await db
    .selectFrom("pin_ledger")
    .selectAll()
    .where("backend_id", "=", backendId)
    .where("cid", "=", sql<string>`any(${cids}::text[])`)
    .execute();
  return new Map(rows.map((r) => [r.cid, r]));
}

/** Commands a crash left in flight (pinning / unpinning) on these backends. */
export function inFlightRows(
  db: Kysely<Database>,
  backendIds: readonly string[],
): Promise<{ backend_id: string; cid: string; status: PinStatus }[]> {
  return db
    .selectFrom("pin_ledger")
    .select(["backend_id", "cid", "status"])
    .where("status", "in", [...IN_FLIGHT_STATUSES])
    .where("backend_id", "=", sql<string>`any(${backendIds}::text[])`)
    .execute();
}

/**
 * Copies of a CID across backends: a pinned row counts its backend's copies (an IPFS Cluster
 * reports how many peers hold it), one when the backend keeps a single copy.
 */
const held = sql<number>`coalesce(sum(coalesce(copies, 1)) filter (where status = 'pinned'), 0)`;

/**
 * Records the copies each backend reports for its pinned rows (the sweep's listing); only
 * rows whose count changed are written. One statement per call.
 */
export async function recordCopies(
  db: Kysely<Database>,
  /** The reconciler schema (a raw statement is not scoped by withSchema). */
  schema: string,
  backendId: string,
  entries: readonly { cid: string; copies: number }[],
): Promise<number> {
  if (entries.length === 0) return 0;
  const result = await sql`
    update ${sql.id(schema, "pin_ledger")} as p set copies = u.copies
    from unnest(${entries.map((e) => e.cid)}::text[], ${entries.map((e) => e.copies)}::int[]) as u(cid, copies)
    where p.backend_id = ${backendId} and p.cid = u.cid and p.status = 'pinned'
      and p.copies is distinct from u.copies`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Wanted CIDs held in fewer than `required` copies across these backends, oldest CID first. */
export async function underReplicated(
  db: Kysely<Database>,
  backendIds: readonly string[],
  required: number,
  limit: number,
): Promise<{ cid: string; replicas: number }[]> {
  return db
    .selectFrom("pin_ledger")
    .select(["cid", sql<number>`${held}::int`.as("replicas")])
    .where("status", "in", [...WANTED_STATUSES])
    .where("backend_id", "=", sql<string>`any(${backendIds}::text[])`)
    .groupBy("cid")
    .having(held, "<", required)
    .orderBy("cid")
    .limit(limit)
    .execute();
}

/** How many wanted CIDs are held in fewer than `required` copies across these backends. */
export async function underReplicatedCount(
  db: Kysely<Database>,
  backendIds: readonly string[],
  required: number,
): Promise<number> {
  const row = await db
    .selectFrom(
      db
        .selectFrom("pin_ledger")
        .select("cid")
        .where("status", "in", [...WANTED_STATUSES])
        .where("backend_id", "=", sql<string>`any(${backendIds}::text[])`)
        .groupBy("cid")
        .having(held, "<", required)
        .as("d"),
    )
    .select(sql<number>`count(*)::int`.as("count"))
    .executeTakeFirst();
  return row?.count ?? 0;
}

/** Rows per (backend, status), for the pins gauge. */
export function statusCounts(
  db: Kysely<Database>,
): Promise<{ backend_id: string; status: PinStatus; count: number }[]> {
  return db
    .selectFrom("pin_ledger")
    .select(["backend_id", "status", sql<number>`count(*)::int`.as("count")])
    .groupBy(["backend_id", "status"])
    .execute();
}

/** Commands due now (queued or in flight) on these backends: zero when the engine is idle. */
export async function dueCount(
  db: Kysely<Database>,
  backendIds: readonly string[],
  now: Date,
): Promise<number> {
  const row = await db
    .selectFrom("pin_ledger")
    .select(sql<number>`count(*)::int`.as("count"))
    .where("status", "in", ["queued", "unpin_queued", "pinning", "unpinning"])
    .where("next_attempt_at", "<=", now)
    .where("backend_id", "=", sql<string>`any(${backendIds}::text[])`)
    .executeTakeFirst();
  return row?.count ?? 0;
}

/**
 * Releases under way (unpin queued or in flight) of CIDs the desired set holds again, on the
 * given backends: what a step that could not hand out all its changes leaves behind (a
 * contract registered again while its CIDs' unpins wait). One join, served by the desired
 * set's primary key; normally empty.
 */
export function releasesOfDesired(
  db: Kysely<Database>,
  backendIds: readonly string[],
): Promise<{ backend_id: string; cid: string }[]> {
  if (backendIds.length === 0) return Promise.resolve([]);
  return db
    .selectFrom("pin_ledger")
    .innerJoin("desired_cid", "desired_cid.cid", "pin_ledger.cid")
    .select(["pin_ledger.backend_id", "pin_ledger.cid"])
    .where("pin_ledger.backend_id", "=", sql<string>`any(${backendIds}::text[])`)
    .where("pin_ledger.status", "in", ["unpin_queued", "unpinning"])
    .execute();
}
