import { type Kysely, type Migration, sql } from "kysely";

/**
 * API keys in the database and the Pinning Service API's pin requests.
 *
 * - `api_key`: one row per key made by `quasar keys create`. Only the SHA-256 of the secret is
 *   stored (the secret is high-entropy, so a plain hash cannot be reversed); `id` is the key id
 *   shown in logs and upload records (`key-<12 hex>`, the same derivation as QUASAR_API_KEYS').
 *   A revoked key keeps its row (its requests and usage stay explainable).
 * - `psa_usage`: each key's live requests and bytes.
 * - `psa_request`: one row per live request; deleting (or replacing) a request deletes its
 *   row. `created` is unique per key (the API spaces a key's requests by ≥ 1 ms) so paging by
 *   `before` never skips nor repeats. The `psa` reason of the desired set counts these rows.
 * - `desired_cid.is_psa`: the reason-kind flag of the new reason, like the other four.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration runs against whatever schema existed before it
type AnyDb = Kysely<any>;

const cidType = sql`text collate "C"`;

async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable("api_key")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("secret_sha256", "text", (c) => c.notNull().unique())
    .addColumn("label", "text", (c) => c.notNull())
    .addColumn("quota_pins", "bigint")
    .addColumn("quota_bytes", "bigint")
    .addColumn("created_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("last_used_at", "timestamptz")
    .addColumn("revoked_at", "timestamptz")
    .execute();

  // Each key's live requests and their known bytes, kept by db/psa (the one writer) in the
  // request's own transaction: quotas and the unfiltered `count` read one row, not a million.
  // Keyed by key id, so QUASAR_API_KEYS' bootstrap keys have usage too.
  await db.schema
    .createTable("psa_usage")
    .addColumn("key_id", "text", (c) => c.primaryKey())
    .addColumn("requests", "bigint", (c) => c.notNull().defaultTo(0))
    .addColumn("bytes", "bigint", (c) => c.notNull().defaultTo(0))
    // Bumped by every delete (and replace): cached page counts of this key are then stale.
    .addColumn("deletes", "bigint", (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .createTable("psa_request")
    .addColumn("requestid", "text", (c) => c.primaryKey())
    .addColumn("key_id", "text", (c) => c.notNull())
    .addColumn("cid", cidType, (c) => c.notNull())
    // The CID as the client sent it (answered back unchanged).
    .addColumn("cid_given", "text", (c) => c.notNull())
    .addColumn("name", "text")
    .addColumn("origins", "jsonb", (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn("meta", "jsonb", (c) => c.notNull().defaultTo(sql`'{}'::jsonb`))
    .addColumn("created", "timestamptz", (c) => c.notNull())
    // Bytes counted against the key's quota: the DAG size Quasar knew when the request came.
    .addColumn("size", "bigint", (c) => c.notNull().defaultTo(0))
    .execute();
  // Pages newest first per key, and the `before`/`after` bounds: one index.
  await db.schema
    .createIndex("psa_request_key_created_idx")
    .on("psa_request")
    .columns(["key_id", "created"])
    .unique()
    .execute();
  await db.schema
    .createIndex("psa_request_key_cid_idx")
    .on("psa_request")
    .columns(["key_id", "cid"])
    .execute();
  // The desired step counts requests per CID, whichever key holds them.
  await db.schema.createIndex("psa_request_cid_idx").on("psa_request").column("cid").execute();

  await db.schema
    .alterTable("desired_cid")
    .addColumn("is_psa", "boolean", (c) => c.notNull().defaultTo(false))
    .execute();
}

async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable("desired_cid").dropColumn("is_psa").execute();
  await db.schema.dropTable("psa_request").ifExists().execute();
  await db.schema.dropTable("psa_usage").ifExists().execute();
  await db.schema.dropTable("api_key").ifExists().execute();
}

export const psaMigration: Migration = { up, down };
