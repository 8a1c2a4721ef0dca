import type { Kysely, Transaction } from "kysely";
import { normalizeCid } from "@/src/cid.js";
import type { DesiredTables } from "./desired/tables.js";

/**
 * Optimistic pins: uploads through the API, desired until created + QUASAR_PIN_TTL unless
 * a final PinHash confirms them (core/desired: "optimistic"). Append-only: a second
 * upload of one CID adds a row, and the latest expiry wins.
 */
export type RecordOptimisticPinParams = {
  /** QUASAR_RECONCILER_SCHEMA, unless `trx` is already bound to it with withSchema(). */
  schema?: string;
  /** Any spelling of the CID; stored normalised (CIDv1 base32). */
  cid: string;
  /** Bytes stored. */
  size: number | bigint;
  /** An API key id or the client address: never the key itself. */
  uploader: string;
  /** Backend.id of the backend the content was stored and pinned on. */
  backendId: string;
  now: Date;
  /** QUASAR_PIN_TTL in milliseconds. */
  ttlMs: number;
};

export type RecordedOptimisticPin = { id: bigint; cid: string; expiresAt: Date };

/**
 * Records an upload inside the caller's transaction (the API records it in the same step
 * as the upload), and queues the CID for the desired store's next step. Throws
 * InvalidCidError for a string that is not a CID, before writing anything.
 */
export async function recordOptimisticPin<Tables>(
  trx: Transaction<Tables> | Kysely<Tables>,
  params: RecordOptimisticPinParams,
): Promise<RecordedOptimisticPin> {
  const cid = normalizeCid(params.cid);
  const expiresAt = optimisticExpiry(params.now, params.ttlMs);
  let db = trx as unknown as Kysely<DesiredTables>;
  if (params.schema !== undefined) db = db.withSchema(params.schema);
  const row = await db
    .insertInto("optimistic_pin")
    .values({
      cid,
      created_at: params.now,
      expires_at: expiresAt,
      size: BigInt(params.size),
      uploader: params.uploader,
      backend_id: params.backendId,
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  await db
    .insertInto("desired_dirty_cid")
    .values({ cid })
    .onConflict((c) => c.doNothing())
    .execute();
  return { id: BigInt(row.id), cid, expiresAt };
}

/** The one expiry rule: an upload at `created` is desired while now < created + TTL. */
export function optimisticExpiry(created: Date, ttlMs: number): Date {
  return new Date(created.getTime() + ttlMs);
}

/** Latest expiry per CID among `cids` (several uploads of one CID: the latest wins). */
export async function latestOptimisticExpiries<Tables>(
  db: Kysely<Tables>,
  cids: readonly string[],
  options: { schema?: string } = {},
): Promise<Map<string, Date>> {
  const result = new Map<string, Date>();
  if (cids.length === 0) return result;
  let scoped = db as unknown as Kysely<DesiredTables>;
  if (options.schema !== undefined) scoped = scoped.withSchema(options.schema);
  const rows = await scoped
    .selectFrom("optimistic_pin")
    .select(["cid", (eb) => eb.fn.max("expires_at").as("expires_at")])
    .where("cid", "=", (eb) => eb.fn.any(eb.val([...cids])))
    .groupBy("cid")
    .execute();
  for (const row of rows) result.set(row.cid, new Date(row.expires_at));
  return result;
}
