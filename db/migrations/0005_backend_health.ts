import { type Kysely, type Migration, sql } from "kysely";

/**
 * Each backend's health as the reconciler last saw it: up or down, why, since when. The
 * reconciler writes it; `quasar status` reads it, so another process (or an operator on
 * another machine) sees a backend that is down without asking the reconciler itself.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration runs against whatever schema existed before it
type AnyDb = Kysely<any>;

async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable("backend_health")
    .addColumn("backend_id", "text", (c) => c.primaryKey())
    // The masked connection string: never a secret.
    .addColumn("label", "text", (c) => c.notNull())
    .addColumn("up", "boolean", (c) => c.notNull())
    .addColumn("last_error", "text")
    // When `up` last changed.
    .addColumn("since", "timestamptz", (c) => c.notNull())
    // When the reconciler last reported: an old value means it is not running.
    .addColumn("reported_at", "timestamptz", (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
}

async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable("backend_health").ifExists().execute();
}

export const backendHealthMigration: Migration = { up, down };
