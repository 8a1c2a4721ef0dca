import type { Kysely, Migration } from "kysely";

/**
 * The API's rate-limit counters, shared by every API process (rate-limiter-flexible's
 * RateLimiterPostgres, see api/rate-limit.ts). The library writes `INSERT … VALUES (key,
 * points, expire)` by position, so the columns and their order are its own table's; `expire`
 * is a window's end in ms since the epoch, and the library deletes rows an hour past it.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration runs against whatever schema existed before it
type AnyDb = Kysely<any>;

async function up(db: AnyDb): Promise<void> {
  await db.schema
    .createTable("api_rate_limit")
    .addColumn("key", "varchar(255)", (c) => c.primaryKey())
    .addColumn("points", "integer", (c) => c.notNull().defaultTo(0))
    .addColumn("expire", "bigint")
    .execute();
  await db.schema
    .createIndex("api_rate_limit_expire_idx")
    .on("api_rate_limit")
    .column("expire")
    .execute();
}

async function down(db: AnyDb): Promise<void> {
  await db.schema.dropTable("api_rate_limit").ifExists().execute();
}

export const apiRateLimitMigration: Migration = { up, down };
