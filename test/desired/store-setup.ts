import { type Kysely, sql } from "kysely";
import { connectDatabase } from "@/db/connect.js";
import { createDesiredStore, type DesiredStore } from "@/db/desired/index.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { createTestSchema } from "../harness/postgres.js";
import { createIndexerTables } from "./indexer.js";

/** A desired store over fresh indexer and reconciler schemas on the real local Postgres. */
export type StoreFixture = {
  db: Kysely<Record<string, never>>;
  store: DesiredStore;
  indexerSchema: string;
  reconcilerSchema: string;
  /** Drops both schemas and closes the pool. */
  close(): Promise<void>;
};

export async function createStoreFixture(ttlMs: number): Promise<StoreFixture> {
  const indexer = await createTestSchema("dsi");
  const reconciler = await createTestSchema("dsr");
  const db = connectDatabase<Record<string, never>>({
    databaseUrl: indexer.databaseUrl,
    maxConnections: 3,
  });
  try {
    await createIndexerTables(db, indexer.schema);
    await migrateToLatest(db, reconciler.schema);
  } catch (error) {
    // Leave no schema behind when set-up fails.
    await indexer.drop();
    await reconciler.drop();
    await db.destroy();
    throw error;
  }
  const store = createDesiredStore({
    db,
    indexerSchema: indexer.schema,
    reconcilerSchema: reconciler.schema,
    ttlMs,
  });
  return {
    db,
    store,
    indexerSchema: indexer.schema,
    reconcilerSchema: reconciler.schema,
    async close() {
      await indexer.drop();
      await reconciler.drop();
      await db.destroy();
    },
  };
}

/** Rows of one reconciler table, sorted, as JSON text (to compare snapshots). */
export async function snapshot<T>(db: Kysely<T>, schema: string, table: string): Promise<string> {
  const result = await sql<
    Record<string, unknown>
  >`select * from ${sql.id(schema, table)} order by 1`.execute(db);
  return JSON.stringify(result.rows, (_key, value) =>
    typeof value === "bigint" ? value.toString() : value,
  );
}
