import { type Kysely, sql } from "kysely";
import type { Database } from "../database.js";

/** Reconcile-log rows that mean "a copy of the CID is now pinned on the backend". */
const PINNED_DECISIONS = ["pin", "copy", "adopt", "record_owned"] as const;

/**
 * Pins completed per minute over the last `minutes` minutes (by the database clock), oldest
 * minute first, the current (partial) minute last; every minute present, zeros included.
 */
export async function pinsPerMinute(
  db: Kysely<Database>,
  schema: string,
  minutes: number,
): Promise<{ minute: Date; pins: number }[]> {
  const result = await sql<{ minute: Date; pins: string }>`
    select m.minute, count(l.id)::text as pins
    from generate_series(
      date_trunc('minute', now()) - make_interval(mins => ${minutes - 1}),
      date_trunc('minute', now()),
      interval '1 minute') as m(minute)
    left join ${sql.id(schema, "reconcile_log")} l
      on l.at >= m.minute and l.at < m.minute + interval '1 minute'
      and l.outcome = 'ok' and l.decision = any(${[...PINNED_DECISIONS]}::text[])
    group by m.minute
    order by m.minute`.execute(db);
  return result.rows.map((row) => ({ minute: new Date(row.minute), pins: Number(row.pins) }));
}

/** One failed command from the reconcile log. */
export type RecentError = {
  at: Date;
  backendId: string;
  cid: string;
  decision: string;
  error: string;
};

/** The last `limit` failed commands of each backend, newest first. */
export async function recentErrors(
  db: Kysely<Database>,
  schema: string,
  limit: number,
): Promise<RecentError[]> {
  const result = await sql<{
    at: Date;
    backend_id: string;
    cid: string;
    decision: string;
    error: string | null;
  }>`
    select at, backend_id, cid, decision, error from (
      select *, row_number() over (partition by backend_id order by id desc) as n
      from ${sql.id(schema, "reconcile_log")}
      where outcome = 'error' and at > now() - interval '7 days') as recent
    where n <= ${limit}
    order by backend_id, at desc`.execute(db);
  return result.rows.map((row) => ({
    at: new Date(row.at),
    backendId: row.backend_id,
    cid: row.cid,
    decision: row.decision,
    error: row.error ?? "",
  }));
}
