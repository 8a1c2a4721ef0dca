import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import { MIGRATIONS, migrateToLatest } from "@/db/migrations/index.js";
import { createTestSchema, type TestSchema } from "@/test/harness/postgres.js";

describe("migrateToLatest", () => {
  let schema: TestSchema;
  const db = connectDatabase({
    databaseUrl: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres",
  });
  beforeAll(async () => {
    schema = await createTestSchema("mig");
    // Migrate into a schema that does not exist yet: migrateToLatest creates it.
    await schema.drop();
  });
  afterAll(async () => {
    await sql`drop schema if exists ${sql.id(schema.schema)} cascade`.execute(db);
    await db.destroy();
  });

  it("creates every table in the reconciler schema, in order, and is idempotent", async () => {
    const first = await migrateToLatest(db, schema.schema);
    expect(first.results?.map((result) => result.migrationName)).toEqual(Object.keys(MIGRATIONS));
    const second = await migrateToLatest(db, schema.schema);
    expect(second.results).toEqual([]);
    const tables = await sql<{ table_name: string }>`
      select table_name from information_schema.tables where table_schema = ${schema.schema} order by table_name`.execute(
      db,
    );
    expect(tables.rows.map((row) => row.table_name)).toEqual(
      expect.arrayContaining([
        "optimistic_pin",
        "offchain_registration",
        "registration_event",
        "pin_ref",
        "desired_cid",
        "desired_cursor",
        "kysely_migration",
      ]),
    );
    const publicTables = await sql<{ n: bigint }>`
      select count(*) as n from information_schema.tables where table_schema = 'public' and table_name = 'desired_cid'`.execute(
      db,
    );
    expect(publicTables.rows[0]?.n).toBe(0n);
  });
});
