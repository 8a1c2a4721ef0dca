import { type Kysely, sql } from "kysely";
import { connectDatabase } from "@/db/connect.js";
import type { Database } from "@/db/database.js";
import { createDesiredStore, type DesiredStore } from "@/db/desired/index.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import type { UploadRecord } from "@/db/uploads/index.js";
import { createTestSchema } from "../harness/postgres.js";
import { createIndexerTables } from "./indexer.js";

/** A desired store over fresh indexer and reconciler schemas on the real local Postgres. */
export type StoreFixture = {
  db: Kysely<Database>;
  store: DesiredStore;
  indexerSchema: string;
  reconcilerSchema: string;
  /** Drops both schemas and closes the pool. */
  close(): Promise<void>;
};

export async function createStoreFixture(
  ttlMs: number,
  options: { affectedInMemory?: number; vacuumAfterRows?: number } = {},
): Promise<StoreFixture> {
  const indexer = await createTestSchema("dsi");
  const reconciler = await createTestSchema("dsr");
  const db = connectDatabase({
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
    ...options,
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

/**
 * An upload as the API records it (stored, not yet pinned, on a backend outside the test's
 * reconciler unless `fields` says otherwise), for recordUploads.
 */
export function upload(cid: string, now: Date, fields: Partial<UploadRecord> = {}): UploadRecord {
  return {
    cid,
    size: 1,
    uploader: "test",
    backendId: "elsewhere",
    now,
    pinnedOnBackend: false,
    pinDeadlineMs: 3_600_000,
    ...fields,
  };
}
