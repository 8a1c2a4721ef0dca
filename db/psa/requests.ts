import { type Kysely, type RawBuilder, sql, type Transaction } from "kysely";
import type { Database } from "../database.js";
import type { KeyQuota } from "../keys/keys.js";
import {
  derivePsaStatus,
  type LedgerCounts,
  PSA_STATUSES,
  type PsaStatus,
  psaStatusSql,
  type ReplicaRule,
} from "./status.js";

/**
 * The Pinning Service API's requests: the one writer of psa_request and psa_usage, and their
 * reads. Every write takes the key's advisory lock first, so a key's quota check, its
 * `created` spacing and its usage counter see one request at a time (other keys do not wait).
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

/** A key's lock: one request of a key is written at a time. */
function lockKey(trx: Transaction<Database>, schema: string, keyId: string) {
  return sql`select pg_advisory_xact_lock(hashtext(${`${schema}.psa:${keyId}`}))`.execute(trx);
}

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
    const requestid = await db.transaction().execute(async (trx) => {
      await lockKey(trx, schema, input.keyId);
      const scoped = trx.withSchema(schema);
      let freed = { requests: 0, bytes: 0 };
      const dirty = new Set([input.cid]);
      if (input.replaces !== undefined) {
        const old = await scoped
          .deleteFrom("psa_request")
          .where("requestid", "=", input.replaces)
          .where("key_id", "=", input.keyId)
          .returning(["cid", "size"])
          .executeTakeFirst();
        if (!old) throw new Refusal({ refused: "not_found" });
        freed = { requests: 1, bytes: Number(old.size) };
        dirty.add(old.cid);
      }
      const known = await scoped
        .selectFrom("optimistic_pin")
        .select((eb) => eb.fn.max("size").as("size"))
        .where("cid", "=", input.cid)
        .executeTakeFirst();
      const size = known?.size == null ? 0 : Number(known.size);
      const usage = await scoped
        .selectFrom("psa_usage")
        .select(["requests", "bytes"])
        .where("key_id", "=", input.keyId)
        .executeTakeFirst();
      const requests = Number(usage?.requests ?? 0) - freed.requests + 1;
      const bytes = Number(usage?.bytes ?? 0) - freed.bytes + size;
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
      await sql`
        insert into ${sql.id(schema, "psa_request")}
          (requestid, key_id, cid, cid_given, name, origins, meta, created, size)
        select ${input.requestid}, ${input.keyId}, ${input.cid}, ${input.cidGiven}, ${input.name},
          ${JSON.stringify(input.origins)}::jsonb, ${JSON.stringify(input.meta)}::jsonb,
          greatest(date_trunc('milliseconds', ${input.now}::timestamptz),
            (select max(created) + interval '1 millisecond' from ${sql.id(schema, "psa_request")}
             where key_id = ${input.keyId})),
          ${size}`.execute(trx);
      await scoped
        .insertInto("psa_usage")
        .values({ key_id: input.keyId, requests, bytes })
        .onConflict((c) => c.column("key_id").doUpdateSet({ requests, bytes }))
        .execute();
      await scoped
        .insertInto("desired_dirty_cid")
        .values([...dirty].map((cid) => ({ cid })))
        .onConflict((c) => c.doNothing())
        .execute();
      return input.requestid;
    });
    const record = await getPsaRequest(db, schema, rule, input.keyId, requestid);
    if (!record) throw new Error("a created request was not found");
    return { created: record };
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
  return db.transaction().execute(async (trx) => {
    await lockKey(trx, schema, keyId);
    const scoped = trx.withSchema(schema);
    const old = await scoped
      .deleteFrom("psa_request")
      .where("requestid", "=", requestid)
      .where("key_id", "=", keyId)
      .returning(["cid", "size"])
      .executeTakeFirst();
    if (!old) return false;
    await sql`update ${sql.id(schema, "psa_usage")}
      set requests = requests - 1, bytes = bytes - ${Number(old.size)}
      where key_id = ${keyId}`.execute(trx);
    await scoped
      .insertInto("desired_dirty_cid")
      .values({ cid: old.cid })
      .onConflict((c) => c.doNothing())
      .execute();
    return true;
  });
}

/** The ledger counts of each row's CID on the configured backends: `s.p`, `s.g`, `s.f`. */
function ledgerLateral(schema: string, rule: ReplicaRule) {
  return sql`cross join lateral (
    select count(*) filter (where l.status = 'pinned')::int as p,
      count(*) filter (where l.status = 'pinning')::int as g,
      count(*) filter (where l.status = 'failed')::int as f
    from ${sql.id(schema, "pin_ledger")} l
    where l.cid = r.cid and l.backend_id = any(${[...rule.backendIds]}::text[])) s`;
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
};

const COLUMNS = sql`r.requestid, r.key_id, r.cid, r.cid_given, r.name, r.origins, r.meta,
  r.created, r.size, s.p, s.g, s.f`;

/** A key's request by id; undefined for an unknown id or another key's request. */
export async function getPsaRequest(
  db: Kysely<Database>,
  schema: string,
  rule: ReplicaRule,
  keyId: string,
  requestid: string,
): Promise<PsaRequestRecord | undefined> {
  const result = await sql<Row>`select ${COLUMNS} from ${sql.id(schema, "psa_request")} r
    ${ledgerLateral(schema, rule)}
    where r.requestid = ${requestid} and r.key_id = ${keyId}`.execute(db);
  const [record] = await decorate(db, schema, rule, result.rows);
  return record;
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
 * A page of a key's requests, newest first, and how many match in all (the page's `before`
 * and `after` included, as clients page until `count` equals what they got).
 */
export async function listPsaRequests(
  db: Kysely<Database>,
  schema: string,
  rule: ReplicaRule,
  filter: PsaListFilter,
): Promise<{ count: number; results: PsaRequestRecord[] }> {
  const table = sql.id(schema, "psa_request");
  const where = sql.join(whereOf(filter), sql` and `);
  const statusFilter = allStatuses(filter.statuses)
    ? sql``
    : sql`and ${psaStatusSql(rule)} = any(${[...filter.statuses]}::text[])`;
  const page = await sql<Row>`select ${COLUMNS} from ${table} r ${ledgerLateral(schema, rule)}
    where ${where} ${statusFilter}
    order by r.created desc limit ${filter.limit}`.execute(db);
  const results = await decorate(db, schema, rule, page.rows);
  const count =
    page.rows.length < filter.limit
      ? // The whole match fits in this page: nothing more to count.
        results.length
      : await countMatches(db, schema, rule, filter);
  return { count, results };
}

async function countMatches(
  db: Kysely<Database>,
  schema: string,
  rule: ReplicaRule,
  filter: PsaListFilter,
): Promise<number> {
  const table = sql.id(schema, "psa_request");
  if (!allStatuses(filter.statuses)) {
    const result = await sql<{ n: number }>`select count(*)::int as n from ${table} r
      ${ledgerLateral(schema, rule)}
      where ${sql.join(whereOf(filter), sql` and `)} and ${psaStatusSql(rule)} = any(${[...filter.statuses]}::text[])`.execute(
      db,
    );
    return result.rows[0]?.n ?? 0;
  }
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
  const after = filter.after ? [sql`r.created > ${filter.after}`] : [];
  if (!filter.before) return count([key, ...after]);
  const oldest = new Date(row.oldest).getTime();
  const newest = new Date(row.newest).getTime();
  const olderShare = (filter.before.getTime() - oldest) / Math.max(1, newest - oldest);
  if (olderShare <= 0.5 || filter.after) return count(whereOf(filter));
  // total − (requests at or after `before`)
  return total - (await count([key, sql`r.created >= ${filter.before}`]));
}

/** Adds the derived status, the last error and the known DAG size to rows of one page. */
async function decorate(
  db: Kysely<Database>,
  schema: string,
  rule: ReplicaRule,
  rows: readonly Row[],
): Promise<PsaRequestRecord[]> {
  if (rows.length === 0) return [];
  const cids = [...new Set(rows.map((row) => row.cid))];
  const [errors, sizes] = await Promise.all([
    sql<{ cid: string; last_error: string }>`
      select distinct on (cid) cid, last_error from ${sql.id(schema, "pin_ledger")}
      where cid = any(${cids}::text[]) and backend_id = any(${[...rule.backendIds]}::text[])
        and last_error is not null
      order by cid, updated_at desc`.execute(db),
    sql<{ cid: string; size: string }>`
      select cid, max(size)::text as size from ${sql.id(schema, "optimistic_pin")}
      where cid = any(${cids}::text[]) group by cid`.execute(db),
  ]);
  const errorOf = new Map(errors.rows.map((row) => [row.cid, row.last_error]));
  const sizeOf = new Map(sizes.rows.map((row) => [row.cid, Number(row.size)]));
  return rows.map((row) => {
    const counts: LedgerCounts = { pinned: row.p, pinning: row.g, failed: row.f };
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
      lastError: errorOf.get(row.cid) ?? null,
      dagSize: sizeOf.get(row.cid) ?? null,
    };
  });
}
