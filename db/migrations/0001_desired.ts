import { type Kysely, type Migration, sql } from "kysely";

/**
 * The desired set's tables: optimistic uploads and off-chain registrations (append-only
 * inputs written by the API), the fold state of each chain's finalized prefix, the
 * materialised desired set, and the per-chain cursor.
 *
 * Unqualified names: the migrator runs on `db.withSchema(QUASAR_RECONCILER_SCHEMA)`.
 * CID columns use the "C" collation so Postgres orders CIDs exactly as JavaScript does
 * (byte order), which the streamed, sorted desired set relies on.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration runs against whatever schema existed before it
type AnyDb = Kysely<any>;

const cidType = sql`text collate "C"`;

async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable("optimistic_pin")
    .addColumn("id", "bigint", (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn("cid", cidType, (c) => c.notNull())
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    .addColumn("expires_at", "timestamptz", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    // An API key id or a client address; never a secret.
    .addColumn("uploader", "text", (c) => c.notNull())
    // The backend the content was uploaded to (Backend.id).
    .addColumn("backend_id", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("optimistic_pin_cid_idx")
    .on("optimistic_pin")
    .columns(["cid", "expires_at"])
    .execute();

  await db.schema
    .createTable("offchain_registration")
    .addColumn("id", "bigint", (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn("chain_id", "bigint", (c) => c.notNull())
    .addColumn("contract", "text", (c) => c.notNull().check(sql`contract ~ '^0x[0-9a-f]{40}$'`))
    .addColumn("action", "text", (c) => c.notNull().check(sql`action in ('register','unregister')`))
    .addColumn("created_at", "timestamptz", (c) => c.notNull())
    // Who asked (an admin label), never a token.
    .addColumn("actor", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("offchain_registration_contract_idx")
    .on("offchain_registration")
    .columns(["chain_id", "contract", "id"])
    .execute();

  // Work queues filled by the API in its own transactions and drained by each step, so no
  // upload or registration is missed whatever order concurrent transactions commit in.
  await db.schema
    .createTable("desired_dirty_cid")
    .addColumn("cid", cidType, (c) => c.primaryKey())
    .execute();
  await db.schema
    .createTable("desired_dirty_contract")
    .addColumn("chain_id", "bigint", (c) => c.notNull())
    .addColumn("contract", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("desired_dirty_contract_pkey", ["chain_id", "contract"])
    .execute();

  // The fold state of each chain's finalized prefix: final events can never be reverted,
  // so these rows are never updated or deleted.
  await db.schema
    .createTable("registration_event")
    .addColumn("event_id", "text", (c) => c.primaryKey())
    .addColumn("chain_id", "bigint", (c) => c.notNull())
    .addColumn("contract", "text", (c) => c.notNull())
    .addColumn("action", "text", (c) => c.notNull().check(sql`action in ('register','unregister')`))
    .addColumn("block_number", "bigint", (c) => c.notNull())
    .addColumn("block_timestamp", "bigint", (c) => c.notNull())
    .addColumn("transaction_hash", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("registration_event_contract_idx")
    .on("registration_event")
    .columns(["chain_id", "contract"])
    .execute();
  await db.schema
    .createTable("pin_ref")
    .addColumn("event_id", "text", (c) => c.primaryKey())
    .addColumn("cid", cidType, (c) => c.notNull())
    .addColumn("chain_id", "bigint", (c) => c.notNull())
    .addColumn("contract", "text", (c) => c.notNull())
    .addColumn("block_number", "bigint", (c) => c.notNull())
    .addColumn("block_timestamp", "bigint", (c) => c.notNull())
    .addColumn("transaction_hash", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("pin_ref_cid_idx").on("pin_ref").column("cid").execute();
  await db.schema
    .createIndex("pin_ref_contract_idx")
    .on("pin_ref")
    .columns(["chain_id", "contract", "cid"])
    .execute();

  // The action deciding each contract's standing as of the last step (it may come from the
  // unfinalized tail); a change re-evaluates the contract's CIDs.
  await db.schema
    .createTable("contract_standing")
    .addColumn("chain_id", "bigint", (c) => c.notNull())
    .addColumn("contract", "text", (c) => c.notNull())
    .addColumn("standing_id", "text")
    .addColumn("standing_final", "boolean", (c) => c.notNull())
    .addPrimaryKeyConstraint("contract_standing_pkey", ["chain_id", "contract"])
    .execute();

  await db.schema
    .createTable("desired_cid")
    .addColumn("cid", cidType, (c) => c.primaryKey())
    .addColumn("reasons", "jsonb", (c) => c.notNull())
    .addColumn("next_change_at", "timestamptz")
    .addColumn("is_confirmed", "boolean", (c) => c.notNull())
    .addColumn("is_pending", "boolean", (c) => c.notNull())
    .addColumn("is_optimistic", "boolean", (c) => c.notNull())
    .addColumn("is_demoted", "boolean", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("desired_cid_next_change_idx")
    .on("desired_cid")
    .column("next_change_at")
    .where(sql.ref("next_change_at"), "is not", null)
    .execute();
  await db.schema
    .createIndex("desired_cid_pending_idx")
    .on("desired_cid")
    .column("cid")
    .where(sql.ref("is_pending"), "=", true)
    .execute();

  await db.schema
    .createTable("desired_cursor")
    .addColumn("chain_id", "bigint", (c) => c.primaryKey())
    // Last folded event id (Ponder's, ordered) of this chain, and the final block folded to.
    .addColumn("folded_event_id", "text")
    .addColumn("folded_block", "bigint", (c) => c.notNull())
    .addColumn("updated_at", "timestamptz", (c) => c.notNull())
    .execute();
}

async function down(db: AnyDb): Promise<void> {
  for (const table of [
    "desired_cursor",
    "desired_cid",
    "contract_standing",
    "pin_ref",
    "registration_event",
    "desired_dirty_contract",
    "desired_dirty_cid",
    "offchain_registration",
    "optimistic_pin",
  ]) {
    await db.schema.dropTable(table).ifExists().execute();
  }
}

export const desiredMigration: Migration = { up, down };
export { down, up };
