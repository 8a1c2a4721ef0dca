import { type Kysely, sql } from "kysely";
import type { DesiredReason, DesiredReasonKind } from "@/core/desired/reasons.js";
import type { Database } from "./database.js";
import { storedReasons } from "./desired/reads.js";
import type { PinStatus } from "./ledger/pin-status.js";
import { type BackendPinState, backendStatesOf } from "./ledger/reads.js";
import { latestOptimisticExpiries } from "./uploads/record.js";

/**
 * The pins Quasar knows about as the API shows them: every CID of the desired set or the
 * ledger, with why it is desired now and each backend's state. `schema` is
 * QUASAR_RECONCILER_SCHEMA.
 */

/**
 * Why each CID is desired right now: the reasons of the last step, less the time-bound ones
 * that ran out since, with the optimistic reason taken live from the uploads (the desired
 * set may lag a step behind an upload). Pure; `optimisticUntil` holds each CID's latest expiry.
 */
export function liveReasons(
  stored: readonly DesiredReason[],
  optimisticUntil: Date | undefined,
  now: Date,
): DesiredReason[] {
  const reasons = stored.filter(
    (r) => r.kind !== "optimistic" && !(r.kind === "demoted" && r.until <= now),
  );
  if (optimisticUntil !== undefined && optimisticUntil > now)
    reasons.push({ kind: "optimistic", expiresAt: optimisticUntil });
  return reasons;
}

/** liveReasons of each of `cids` (normalised); CIDs desired for no reason are absent. */
export async function liveReasonsOf(
  db: Kysely<Database>,
  schema: string,
  cids: readonly string[],
  now: Date,
): Promise<Map<string, DesiredReason[]>> {
  const [stored, optimistic] = await Promise.all([
    storedReasons(db, schema, cids),
    latestOptimisticExpiries(db, schema, cids),
  ]);
  const out = new Map<string, DesiredReason[]>();
  for (const cid of cids) {
    const until = optimistic.get(cid);
    const reasons = stored.get(cid);
    if (reasons === undefined && (until === undefined || until <= now)) continue;
    out.set(cid, liveReasons(reasons ?? [], until, now));
  }
  return out;
}

export type PinListQuery = {
  status?: PinStatus;
  reason?: DesiredReasonKind;
  backend?: string;
  /** Exclusive cursor: the last CID of the previous page. */
  after?: string;
  limit: number;
};

export type PinListPage = {
  items: { cid: string; reasons: DesiredReason[]; backends: BackendPinState[] }[];
  /** Pass as `after` to get the next page; absent on the last page. */
  nextCursor?: string;
};

/** A page of the CIDs in the desired set or the ledger, filtered, in byte order after `after`. */
export async function listPins(
  db: Kysely<Database>,
  schema: string,
  query: PinListQuery,
  now: Date = new Date(),
): Promise<PinListPage> {
  const table = (name: string) => sql.id(schema, name);
  const reasonColumn = query.reason ? sql.ref(`d.is_${query.reason}`) : undefined;
  const result = await sql<{ cid: string }>`
    select c.cid from (
      select cid collate "C" as cid from ${table("desired_cid")}
      union
      select cid collate "C" as cid from ${table("pin_ledger")}
    ) c
    where (${query.after ?? null}::text is null or c.cid > ${query.after ?? null}::text collate "C")
    ${
      query.status || query.backend
        ? sql`and exists (select 1 from ${table("pin_ledger")} l where l.cid = c.cid
            ${query.status ? sql`and l.status = ${query.status}` : sql``}
            ${query.backend ? sql`and l.backend_id = ${query.backend}` : sql``})`
        : sql``
    }
    ${
      reasonColumn
        ? sql`and exists (select 1 from ${table("desired_cid")} d where d.cid = c.cid and ${reasonColumn})`
        : sql``
    }
    order by c.cid limit ${query.limit + 1}`.execute(db);
  const page = result.rows.slice(0, query.limit).map((row) => row.cid);
  const [reasons, ledger] = await Promise.all([
    liveReasonsOf(db, schema, page, now),
    backendStatesOf(db, schema, page),
  ]);
  const items = page.map((cid) => ({
    cid,
    reasons: reasons.get(cid) ?? [],
    backends: ledger.get(cid) ?? [],
  }));
  const last = page[page.length - 1];
  return result.rows.length > query.limit && last ? { items, nextCursor: last } : { items };
}
