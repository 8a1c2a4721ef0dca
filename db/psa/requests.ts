import { type Kysely, type RawBuilder, sql } from "kysely";
import type { Database } from "../database.js";
import type { KeyQuota } from "../keys/keys.js";
import {
  derivePsaStatus,
  type LedgerCounts,
  PSA_STATUSES,
  type PsaStatus,
  psaStatusSql,
  queueJoin,
  type ReplicaRule,
  takenSql,
} from "./status.js";

/**
 * The Pinning Service API's requests: the one writer of psa_request and psa_usage, and their
 * reads. Every write locks the key's usage row first, so a key's quota check, its `created`
 * spacing and its usage counter see one request at a time (other keys do not wait).
 * Each write also queues the CID in desired_dirty_cid: the desired step then re-counts its
 * requests (the `psa` reason) in its next step. `schema` is QUASAR_RECONCILER_SCHEMA.
 */

/** One live request as stored, with its CID's ledger counts (for the derived status). */
export type PsaRequestRecord = {
  requestid: string;
  keyId: string;
  /** Normalised CIDv1. */
  cid: string;
  /** As the client sent it. */
  cidGiven: string;
  name: string | null;
  origins: string[];
  meta: Record<string, string>;
  /** Unique per key (ms precision). */
  created: Date;
  size: number;
  status: PsaStatus;
  /** The most recent error a backend reported for this CID, if any. */
  lastError: string | null;
  /** The DAG's size when Quasar knows it (an upload of the CID), else null. */
  dagSize: number | null;
};

export type NewPsaRequest = {
  requestid: string;
  keyId: string;
  cid: string;
  cidGiven: string;
  name: string | null;
  origins: readonly string[];
  meta: Readonly<Record<string, string>>;
  now: Date;
  quota: KeyQuota;
  /** Replace this request of the same key (atomically: both happen or neither). */
  replaces?: string;
};

export type CreateOutcome =
  | { created: PsaRequestRecord }
  | { refused: "not_found" }
  | { refused: "quota"; details: string };

export const NAME_MATCHES = ["exact", "iexact", "partial", "ipartial"] as const;
export type NameMatch = (typeof NAME_MATCHES)[number];

export type PsaListFilter = {
  keyId: string;
  /** Normalised CIDs. */
  cids?: readonly string[];
  name?: string;
  match: NameMatch;
  statuses: readonly PsaStatus[];
  before?: Date;
  after?: Date;
  /** Every pair must be in the request's meta. */
  meta?: Readonly<Record<string, string>>;
  limit: number;
};

class Refusal extends Error {
  constructor(readonly outcome: Exclude<CreateOutcome, { created: PsaRequestRecord }>) {
    super("refused");
  }
}

/** Records a request (or replaces one), in one transaction; refusals write nothing. */
export async function createPsaRequest(
  db: Kysely<Database>,
  schema: string,
  rule: ReplicaRule,
  input: NewPsaRequest,
): Promise<CreateOutcome> {
  try {
    const row = await db.transaction().execute(async (trx) => {
      // The key's usage row, locked for this transaction (created if new), read with the
      // known size of the CID: one round trip. The row is the key's lock: quota, `created`
      // spacing and counters see one request of a key at a time.
      const [known] = (
        await sql<{ requests: string; bytes: string; size: string }>`
          insert into ${sql.id(schema, "psa_usage")} (key_id) values (${input.keyId})
          on conflict (key_id) do update set key_id = excluded.key_id
          returning requests::text, bytes::text,
            (select coalesce(max(size), 0) from ${sql.id(schema, "optimistic_pin")}
             where cid = ${input.cid})::text as size`.execute(trx)
      ).rows;
      let freed = { requests: 0, bytes: 0 };
      const dirty = new Set([input.cid]);
      if (input.replaces !== undefined) {
        const old = await trx
          .withSchema(schema)
          .deleteFrom("psa_request")
          .where("requestid", "=", input.replaces)
          .where("key_id", "=", input.keyId)
          .returning(["cid", "size"])
          .executeTakeFirst();
        if (!old) throw new Refusal({ refused: "not_found" });
        freed = { requests: 1, bytes: Number(old.size) };
        dirty.add(old.cid);
      }
      const size = Number(known?.size ?? 0);
      const requests = Number(known?.requests ?? 0) - freed.requests + 1;
      const bytes = Number(known?.bytes ?? 0) - freed.bytes + size;
      if (input.quota.pins !== null && requests > input.quota.pins) {
        throw new Refusal({
          refused: "quota",
          details: `this key may hold ${input.quota.pins} pin requests and holds ${requests - 1}`,
        });
      }
      if (input.quota.bytes !== null && size > 0 && bytes > input.quota.bytes) {
        throw new Refusal({
          refused: "quota",
          details: `this key may hold ${input.quota.bytes} bytes; this pin (${size} bytes) would make ${bytes}`,
        });
      }
      // One statement: the request, the key's usage, the desired step's queue, and the new
      // request as answered: queued, as no step has counted it yet (status.ts), with its CID's
      // latest error.
      const created = await sql<Row>`
        with r as (
          insert into ${sql.id(schema, "psa_request")}
            (requestid, key_id, cid, cid_given, name, origins, meta, created, size)
          select ${input.requestid}, ${input.keyId}, ${input.cid}, ${input.cidGiven}, ${input.name},
            ${JSON.stringify(input.origins)}::jsonb, ${JSON.stringify(input.meta)}::jsonb,
            greatest(date_trunc('milliseconds', ${input.now}::timestamptz),
              (select max(created) + interval '1 millisecond' from ${sql.id(schema, "psa_request")}
               where key_id = ${input.keyId})),
            ${size}
          returning *
        ), usage as (
          update ${sql.id(schema, "psa_usage")}
          set requests = ${requests}, bytes = ${bytes}, deletes = deletes + ${freed.requests}
          where key_id = ${input.keyId}
        ), dirty as (
          insert into ${sql.id(schema, "desired_dirty_cid")} (cid)
          select unnest(${[...dirty]}::text[]) on conflict do nothing
        )
        select ${columns(sql`false`)} from r ${ledgerLateral(schema, rule)} ${sizeLateral(schema)}`.execute(
        trx,
      );
      const [first] = created.rows;
      if (!first) throw new Error("the request's insert returned no row");
      return first;
    });
    return { created: toRecord(row, rule) };
  } catch (error) {
    if (error instanceof Refusal) return error.outcome;
    throw error;
  }
}

/** Deletes a key's request; false when the key holds no request with that id. */
export async function deletePsaRequest(
  db: Kysely<Database>,
  schema: string,
  keyId: string,
  requestid: string,
): Promise<boolean> {
  // One statement (its own transaction): the row, the key's usage (its row lock orders this
  // against the key's creates) and the desired step's queue.
  const result = await sql<{ n: number }>`
    with old as (
      delete from ${sql.id(schema, "psa_request")}
      where requestid = ${requestid} and key_id = ${keyId}
      returning cid, size
    ), usage as (
      update ${sql.id(schema, "psa_usage")} u
      set requests = u.requests - 1, bytes = u.bytes - old.size, deletes = u.deletes + 1
      from old where u.key_id = ${keyId}
    ), dirty as (
      insert into ${sql.id(schema, "desired_dirty_cid")} (cid)
      select cid from old on conflict do nothing
    )
    select count(*)::int as n from old`.execute(db);
  return (result.rows[0]?.n ?? 0) > 0;
}

/**
 * Per row, from its CID's ledger rows on the configured backends: the counts the status is
 * derived from (`s.p`, `s.g`, `s.f`) and the latest error (`s.last_error`).
 */
function ledgerLateral(schema: string, rule: ReplicaRule) {
  return sql`cross join lateral (
    select count(*) filter (where l.status = 'pinned')::int as p,
      count(*) filter (where l.status = 'pinning')::int as g,
      count(*) filter (where l.status = 'failed')::int as f,
      (array_agg(l.last_error order by l.updated_at desc)
        filter (where l.last_error is not null))[1] as last_error
    from ${sql.id(schema, "pin_ledger")} l
    -- pin_ledger.cid has the default collation, r.cid "C": without the cast its index is
    -- not used and every row scans the whole ledger (1 s a page at 5,000 ledger rows).
    where l.cid = (r.cid collate "default")
      and l.backend_id = any(${[...rule.backendIds]}::text[])) s`;
}

/** Per row, the DAG size an upload of its CID recorded (`o.dag_size`), if any. */
function sizeLateral(schema: string) {
  return sql`left join lateral (
    select max(o.size)::text as dag_size from ${sql.id(schema, "optimistic_pin")} o
    where o.cid = r.cid) o on true`;
}

type Row = {
  requestid: string;
  key_id: string;
  cid: string;
  cid_given: string;
  name: string | null;
  origins: string[];
  meta: Record<string, string>;
  created: Date;
  size: string | bigint;
  p: number;
  g: number;
  f: number;
  t: boolean;
  last_error: string | null;
  dag_size: string | null;
};

/** A request's columns with its status's inputs; `taken` is false for a request just made. */
const columns = (taken: RawBuilder<boolean>) => sql`r.requestid, r.key_id, r.cid, r.cid_given,
  r.name, r.origins, r.meta, r.created, r.size, s.p, s.g, s.f, ${taken} as t, s.last_error,
  o.dag_size`;

/** A key's request by id; undefined for an unknown id or another key's request. */
export async function getPsaRequest(
  db: Kysely<Database>,
  schema: string,
  rule: ReplicaRule,
  keyId: string,
  requestid: string,
): Promise<PsaRequestRecord | undefined> {
  const result = await sql<Row>`select ${columns(takenSql)} from ${sql.id(schema, "psa_request")} r
    ${queueJoin(schema)} ${ledgerLateral(schema, rule)} ${sizeLateral(schema)}
    where r.requestid = ${requestid} and r.key_id = ${keyId}`.execute(db);
  const [row] = result.rows;
  return row ? toRecord(row, rule) : undefined;
}

/** Escapes LIKE's wildcards so a name matches literally. */
function likeLiteral(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}

function whereOf(filter: PsaListFilter): RawBuilder<unknown>[] {
  const parts: RawBuilder<unknown>[] = [sql`r.key_id = ${filter.keyId}`];
  if (filter.cids && filter.cids.length > 0)
    parts.push(sql`r.cid = any(${[...filter.cids]}::text[])`);
  if (filter.name !== undefined) {
    const name = filter.name;
    switch (filter.match) {
      case "exact":
        parts.push(sql`r.name = ${name}`);
        break;
      case "iexact":
        parts.push(sql`lower(r.name) = lower(${name})`);
        break;
      case "partial":
        parts.push(sql`r.name like ${`%${likeLiteral(name)}%`}`);
        break;
      case "ipartial":
        parts.push(sql`r.name ilike ${`%${likeLiteral(name)}%`}`);
        break;
    }
  }
  if (filter.before) parts.push(sql`r.created < ${filter.before}`);
  if (filter.after) parts.push(sql`r.created > ${filter.after}`);
  if (filter.meta && Object.keys(filter.meta).length > 0) {
    parts.push(sql`r.meta @> ${JSON.stringify(filter.meta)}::jsonb`);
  }
  return parts;
}

function allStatuses(statuses: readonly PsaStatus[]): boolean {
  return PSA_STATUSES.every((status) => statuses.includes(status));
}

/**
 * Counts remembered between the pages of one listing, in the API process: the count of the
 * page after a page (its `before` = the oldest `created` of this one) is this page's count
 * minus its length, exactly, as long as the key deleted nothing meanwhile (new requests are
 * always newer than any `before` a client can hold). Keyed by the key's delete counter, so a
 * delete in any process makes every remembered count of the key unreachable.
 */
export type PsaCountCache = {
  /** Count of the page after a page, keyed by the listing's signature and that page's `before`. */
  pages: Map<string, number>;
  /**
   * A filter's counts by status, kept STATUS_COUNTS_TTL_MS: one grouped count answers the four
   * requests of `ipfs pin remote service ls --stat` and a status-filtered listing's pages.
   */
  statuses: Map<string, { at: number; counts: Record<PsaStatus, number> }>;
};
const COUNT_CACHE_ENTRIES = 10_000;
/**
 * How long a filter's counts by status are reused. They follow the ledger, which moves on
 * its own (a pin completing turns a `pinning` request `pinned`); a count a few seconds old is
 * what a client paging through a moving set sees anyway. Requests created or deleted change
 * the key's usage row, which is in the cache key, so those are never missed.
 */
const STATUS_COUNTS_TTL_MS = 5_000;

export function createPsaCountCache(): PsaCountCache {
  return { pages: new Map(), statuses: new Map() };
}

/**
 * A page of a key's requests, newest first, and how many match in all (the page's `before`
 * and `after` included, as clients page until `count` equals what they got).
 */
export async function listPsaRequests(
  db: Kysely<Database>,
  schema: string,
  rule: ReplicaRule,
  filter: PsaListFilter,
  cache?: PsaCountCache,
): Promise<{ count: number; results: PsaRequestRecord[] }> {
  const table = sql.id(schema, "psa_request");
  const where = sql.join(whereOf(filter), sql` and `);
  const statusFilter = allStatuses(filter.statuses)
    ? sql``
    : sql`and ${psaStatusSql(rule, takenSql)} = any(${[...filter.statuses]}::text[])`;
  // Plain rows rendered in JavaScript: measured faster than having PostgreSQL build the
  // page's JSON (jsonb_build_object + json_agg) or aggregate the rows into one JSON text.
  const [page, usage] = await Promise.all([
    sql<Row>`select ${columns(takenSql)} from ${table} r ${queueJoin(schema)}
      ${ledgerLateral(schema, rule)} ${sizeLateral(schema)}
      where ${where} ${statusFilter}
      order by r.created desc limit ${filter.limit}`.execute(db),
    sql<{ deletes: string; requests: string }>`select deletes::text, requests::text
      from ${sql.id(schema, "psa_usage")} where key_id = ${filter.keyId}`.execute(db),
  ]);
  const results = page.rows.map((row) => toRecord(row, rule));
  const usageRow = { deletes: "0", requests: "0", ...usage.rows[0] };
  // A page's count carries over to the next page only without a status filter: statuses
  // follow the ledger, which moves between pages (countByStatus keeps those counts 5 s).
  const signature = allStatuses(filter.statuses)
    ? JSON.stringify([...matchKey(filter), usageRow.deletes])
    : undefined;
  let count: number;
  const remembered =
    signature && filter.before
      ? cache?.pages.get(`${signature}${filter.before.getTime()}`)
      : undefined;
  if (results.length < filter.limit)
    count = results.length; // every match is in this page
  else if (remembered !== undefined) count = remembered;
  else if (signature === undefined)
    count = await countByStatus(db, schema, rule, filter, usageRow, cache);
  else count = await countMatches(db, schema, filter);
  const oldest = results[results.length - 1];
  if (cache && signature && oldest && count > results.length) {
    if (cache.pages.size >= COUNT_CACHE_ENTRIES) cache.pages.clear();
    cache.pages.set(`${signature}${oldest.created.getTime()}`, count - results.length);
  }
  return { count, results };
}

/** What a filter matches, statuses and `before` aside: the part of every count cache key. */
function matchKey(filter: PsaListFilter): unknown[] {
  return [
    filter.keyId,
    filter.cids ?? [],
    filter.name ?? null,
    filter.match,
    filter.meta ?? null,
    filter.after?.getTime() ?? null,
  ];
}

/**
 * The count of a status-filtered listing: every status counted in one pass (linear in the
 * key's requests: see the README's limits), remembered briefly so the other statuses and the
 * following pages of the same filter do not pay for it again.
 */
async function countByStatus(
  db: Kysely<Database>,
  schema: string,
  rule: ReplicaRule,
  filter: PsaListFilter,
  usage: { deletes: string; requests: string },
  cache: PsaCountCache | undefined,
): Promise<number> {
  const key = JSON.stringify([
    ...matchKey(filter),
    usage.deletes,
    usage.requests,
    rule,
    filter.before?.getTime() ?? null,
  ]);
  const now = Date.now();
  let entry = cache?.statuses.get(key);
  if (!entry || now - entry.at > STATUS_COUNTS_TTL_MS) {
    entry = { at: now, counts: await countStatuses(db, schema, rule, filter) };
    if (cache) {
      for (const [old, { at }] of cache.statuses)
        if (now - at > STATUS_COUNTS_TTL_MS) cache.statuses.delete(old);
      if (cache.statuses.size >= COUNT_CACHE_ENTRIES) cache.statuses.clear();
      cache.statuses.set(key, entry);
    }
  }
  let count = 0;
  for (const status of filter.statuses) count += entry.counts[status];
  return count;
}

/**
 * The requests matching `filter` (its statuses aside), by derived status: one hash join of
 * the key's requests with the ledger's counts per CID, two scans rather than one index probe
 * per request (several times faster at 50,000 requests).
 */
async function countStatuses(
  db: Kysely<Database>,
  schema: string,
  rule: ReplicaRule,
  filter: PsaListFilter,
): Promise<Record<PsaStatus, number>> {
  const result = await sql<{ status: PsaStatus; n: number }>`select status, count(*)::int as n
    from (
      select ${psaStatusSql(rule, sql`s.t`)} as status from (
        select coalesce(l.p, 0) as p, coalesce(l.g, 0) as g, coalesce(l.f, 0) as f,
          ${takenSql} as t
        from ${sql.id(schema, "psa_request")} r ${queueJoin(schema)}
        left join (
          select cid, count(*) filter (where status = 'pinned')::int as p,
            count(*) filter (where status = 'pinning')::int as g,
            count(*) filter (where status = 'failed')::int as f
          from ${sql.id(schema, "pin_ledger")}
          where backend_id = any(${[...rule.backendIds]}::text[])
          group by cid
        ) l on l.cid = (r.cid collate "default")
        where ${sql.join(whereOf(filter), sql` and `)}
      ) s
    ) t group by status`.execute(db);
  const counts: Record<PsaStatus, number> = { queued: 0, pinning: 0, pinned: 0, failed: 0 };
  for (const row of result.rows) counts[row.status] = row.n;
  return counts;
}

/** The requests matching `filter` when it takes every status. */
async function countMatches(
  db: Kysely<Database>,
  schema: string,
  filter: PsaListFilter,
): Promise<number> {
  const table = sql.id(schema, "psa_request");
  const onlyTime =
    (filter.cids ?? []).length === 0 &&
    filter.name === undefined &&
    Object.keys(filter.meta ?? {}).length === 0;
  if (!onlyTime) {
    const result = await sql<{ n: number }>`select count(*)::int as n from ${table} r
      where ${sql.join(whereOf(filter), sql` and `)}`.execute(db);
    return result.rows[0]?.n ?? 0;
  }
  // Bounded by time only: the key's usage row holds the total, so count whichever side of
  // `before` is smaller (by the key's time span) and subtract when it is the newer side.
  const bounds = await sql<{ total: string | null; oldest: Date | null; newest: Date | null }>`
    select (select requests::text from ${sql.id(schema, "psa_usage")} where key_id = ${filter.keyId}) as total,
      (select min(created) from ${table} where key_id = ${filter.keyId}) as oldest,
      (select max(created) from ${table} where key_id = ${filter.keyId}) as newest`.execute(db);
  const row = bounds.rows[0];
  const total = Number(row?.total ?? 0);
  if (!row?.oldest || !row.newest || total === 0) return 0;
  const count = async (parts: RawBuilder<unknown>[]) =>
    (
      await sql<{ n: number }>`select count(*)::int as n from ${table} r
        where ${sql.join(parts, sql` and `)}`.execute(db)
    ).rows[0]?.n ?? 0;
  const key = sql`r.key_id = ${filter.keyId}`;
  if (!filter.before && !filter.after) return total;
  if (!filter.before) return count(whereOf(filter));
  const oldest = new Date(row.oldest).getTime();
  const newest = new Date(row.newest).getTime();
  const olderShare = (filter.before.getTime() - oldest) / Math.max(1, newest - oldest);
  if (olderShare <= 0.5 || filter.after) return count(whereOf(filter));
  // total − (requests at or after `before`)
  return total - (await count([key, sql`r.created >= ${filter.before}`]));
}

/** A row with its derived status. */
function toRecord(row: Row, rule: ReplicaRule): PsaRequestRecord {
  const counts: LedgerCounts = { pinned: row.p, pinning: row.g, failed: row.f, taken: row.t };
  return {
    requestid: row.requestid,
    keyId: row.key_id,
    cid: row.cid,
    cidGiven: row.cid_given,
    name: row.name,
    origins: row.origins,
    meta: row.meta,
    created: new Date(row.created),
    size: Number(row.size),
    status: derivePsaStatus(counts, rule),
    lastError: row.last_error,
    dagSize: row.dag_size === null ? null : Number(row.dag_size),
  };
}
