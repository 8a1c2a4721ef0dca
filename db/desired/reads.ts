import { type Kysely, sql } from "kysely";
import { type DesiredReason, reasonFromJson } from "@/core/desired/reasons.js";
import type { Database } from "../database.js";
import type { DesiredCounts, DesiredTextPage } from "./types.js";

/**
 * Reads of the persisted desired set (desired_cid), shared by the store, the API, the CLI and
 * the auditors: one query per question. `schema` is QUASAR_RECONCILER_SCHEMA.
 */

/** CIDs per keyset page when streaming the desired set. */
const STREAM_PAGE = 20_000;

/**
 * Every desired CID in ascending order, in pages (one await per page, bounded memory).
 * A missing desired_cid table throws Postgres's error (see isMissingRelation).
 */
export async function* streamDesiredPages(
  db: Kysely<Database>,
  schema: string,
  options: { signal?: AbortSignal } = {},
): AsyncIterable<string[]> {
  for await (const page of streamDesiredText(db, schema, options)) yield page.text.split("\n");
}

/**
 * streamDesiredPages as the database sends it: each page one text, its CIDs (at least one)
 * joined by newlines. For a consumer that reads the page as bytes and never needs a string
 * per CID (the sweep's diff).
 */
export async function* streamDesiredText(
  db: Kysely<Database>,
  schema: string,
  { signal }: { signal?: AbortSignal } = {},
): AsyncIterable<DesiredTextPage> {
  // One text per page: the driver parses one row, not 20,000, which makes the stream about
  // three times faster. CIDs never contain a newline.
  const page = async (after: string) => {
    const result = await sql<{ cids: string | null; count: number; last: string | null }>`
      select string_agg(cid, E'\n' order by cid) as cids, count(*)::int as count,
        max(cid) as last from (
        select cid from ${sql.id(schema, "desired_cid")}
        where cid > ${after} order by cid limit ${STREAM_PAGE}) as page`.execute(db);
    return result.rows[0] ?? { cids: null, count: 0, last: null };
  };
  // The next page is requested as soon as the current one arrives, so the database
  // works while the consumer handles this page; memory stays at two pages.
  let pending = page("");
  for (;;) {
    signal?.throwIfAborted();
    const { cids, count, last } = await pending;
    const more = count === STREAM_PAGE && last !== null;
    if (more) {
      pending = page(last);
      // A consumer that stops early leaves this request unawaited: never an unhandled rejection.
      pending.catch(() => {});
    }
    if (cids !== null && count > 0) yield { text: cids, count };
    if (!more) return;
  }
}

/** Counts of desired CIDs by reason kind: the one count behind metrics and `quasar status`. */
export async function countDesired(db: Kysely<Database>, schema: string): Promise<DesiredCounts> {
  const row = await db
    .withSchema(schema)
    .selectFrom("desired_cid")
    .select((eb) => [
      eb.fn.countAll<bigint | string>().as("desired"),
      eb.fn.countAll<bigint | string>().filterWhere("is_confirmed", "=", true).as("confirmed"),
      eb.fn.countAll<bigint | string>().filterWhere("is_pending", "=", true).as("pending"),
      eb.fn.countAll<bigint | string>().filterWhere("is_optimistic", "=", true).as("optimistic"),
      eb.fn.countAll<bigint | string>().filterWhere("is_demoted", "=", true).as("demoted"),
      eb.fn.countAll<bigint | string>().filterWhere("is_psa", "=", true).as("psa"),
    ])
    .executeTakeFirstOrThrow();
  return {
    desired: Number(row.desired),
    confirmed: Number(row.confirmed),
    pending: Number(row.pending),
    optimistic: Number(row.optimistic),
    demoted: Number(row.demoted),
    psa: Number(row.psa),
  };
}

/**
 * The reasons stored for each of `cids` (normalised) as of the last step; CIDs that are not
 * desired are absent from the map.
 */
export async function storedReasons(
  db: Kysely<Database>,
  schema: string,
  cids: readonly string[],
): Promise<Map<string, DesiredReason[]>> {
  const out = new Map<string, DesiredReason[]>();
  if (cids.length === 0) return out;
  const rows = await db
    .withSchema(schema)
    .selectFrom("desired_cid")
    .select(["cid", "reasons"])
    .where("cid", "=", (eb) => eb.fn.any(eb.val([...cids])))
    .execute();
  for (const row of rows) out.set(row.cid, row.reasons.map(reasonFromJson));
  return out;
}

/** The earliest `next_change_at` of the desired set (its partial index answers it); null when none. */
export async function earliestChangeAt(db: Kysely<Database>, schema: string): Promise<Date | null> {
  const row = await db
    .withSchema(schema)
    .selectFrom("desired_cid")
    .select((eb) => eb.fn.min("next_change_at").as("at"))
    .executeTakeFirst();
  const at = row?.at as Date | string | null | undefined;
  return at === null || at === undefined ? null : new Date(at);
}
