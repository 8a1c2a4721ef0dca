import { type Kysely, type Migration, sql } from "kysely";

/**
 * The per-backend pin ledger and the append-only reconcile log.
 *
 * Written with kysely's schema builder and unqualified names so the migrator decides the
 * schema (`db.withSchema(QUASAR_RECONCILER_SCHEMA)`); index names are never schema-qualified.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration runs against whatever schema existed before it
type AnyDb = Kysely<any>;

async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable("pin_ledger")
    .addColumn("backend_id", "text", (c) => c.notNull())
    .addColumn("cid", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) =>
      c
        .notNull()
        .check(
          sql`status in ('queued','pinning','pinned','failed','unpin_queued','unpinning','unpinned')`,
        ),
    )
    // true: Quasar created (or may have created) the pin and may remove it; false: never unpinned.
    .addColumn("owned", "boolean", (c) => c.notNull().defaultTo(false))
    .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("last_error", "text")
    .addColumn("next_attempt_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("first_queued_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("updated_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("deadline_at", "timestamptz")
    .addPrimaryKeyConstraint("pin_ledger_pkey", ["backend_id", "cid"])
    .execute();

  // The two work queues, each an index matching its claim query exactly: new work (never
  // attempted) first, retries and slow retries of failed pins after, so failures never starve
  // new work.
  await db.schema
    .createIndex("pin_ledger_new_idx")
    .on("pin_ledger")
    .columns(["backend_id", "next_attempt_at"])
    .where(sql<boolean>`status in ('queued','unpin_queued') and attempts = 0`)
    .execute();
  await db.schema
    .createIndex("pin_ledger_retry_idx")
    .on("pin_ledger")
    .columns(["backend_id", "next_attempt_at"])
    .where(
      sql<boolean>`(status in ('queued','unpin_queued') and attempts > 0) or status = 'failed'`,
    )
    .execute();
  // Counts per status (metrics, degraded) and the in-flight rows re-driven at start.
  await db.schema
    .createIndex("pin_ledger_status_idx")
    .on("pin_ledger")
    .columns(["status", "backend_id"])
    .execute();
  await db.schema.createIndex("pin_ledger_cid_idx").on("pin_ledger").column("cid").execute();

  await db.schema
    .createTable("reconcile_log")
    .addColumn("id", "bigint", (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn("at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn("backend_id", "text", (c) => c.notNull())
    .addColumn("cid", "text", (c) => c.notNull())
    .addColumn("decision", "text", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    // started: intent recorded before the command; ok/error: its outcome.
    .addColumn("outcome", "text", (c) =>
      c.notNull().check(sql`outcome in ('started','ok','error')`),
    )
    .addColumn("error", "text")
    .execute();
  await db.schema
    .createIndex("reconcile_log_cid_idx")
    .on("reconcile_log")
    .columns(["cid", "id"])
    .execute();
  await db.schema.createIndex("reconcile_log_at_idx").on("reconcile_log").column("at").execute();
}

async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable("reconcile_log").ifExists().execute();
  await db.schema.dropTable("pin_ledger").ifExists().execute();
}

export const ledgerMigration: Migration = { up, down };
export { down, up };
