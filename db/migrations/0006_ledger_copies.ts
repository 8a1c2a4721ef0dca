import type { Kysely, Migration } from "kysely";

/**
 * How many copies a backend holds of a pinned CID, where it keeps several (IPFS Cluster:
 * the peers that pinned it). Null means one, as every backend before this held. The degraded
 * report and QUASAR_MIN_REPLICAS count copies, not backends.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration runs against whatever schema existed before it
type AnyDb = Kysely<any>;

async function up(db: AnyDb): Promise<void> {
  await db.schema.alterTable("pin_ledger").addColumn("copies", "integer").execute();
}

async function down(db: AnyDb): Promise<void> {
  await db.schema.alterTable("pin_ledger").dropColumn("copies").execute();
}

export const ledgerCopiesMigration: Migration = { up, down };
