import type { Kysely } from "kysely";
import { type Logger, pino } from "pino";
import {
  type Backend,
  type ContentCapableBackend,
  createBackend,
  requireContent,
} from "@/backends/index.js";
import { loadConfig } from "@/core/config/load.js";
import type { QuasarConfig } from "@/core/config/schema.js";
import { connectDatabase } from "@/db/connect.js";
import type { Database } from "@/db/database.js";
import { createDesiredStore, type DesiredStore } from "@/db/desired/index.js";
import { getLedgerRow, type LedgerRow, ledgerDb } from "@/db/ledger/ledger.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { recordUploads } from "@/db/uploads/index.js";
import {
  type CreateReconcilerParams,
  createReconciler,
  type Reconciler,
} from "@/reconciler/engine/engine.js";
import { createReconcilerMetrics, type ReconcilerMetrics } from "@/reconciler/engine/metrics.js";
import { createIndexerTables } from "./desired/indexer.js";
import { upload } from "./desired/store-setup.js";
import { createTestSchema } from "./harness/postgres.js";

/**
 * The engine on real parts for one suite: fresh reconciler and indexer schemas (the indexer's
 * tables empty, as before Ponder's first event), the real desired store, the given backends
 * (opened), and a reconciler built with fast test timings. Desired CIDs enter the way
 * uploads do, recorded by db/uploads as the API records them, on a backend outside this
 * reconciler ("elsewhere", so the engine pins them on its own backends at once).
 */
export type EngineFixture = {
  db: Kysely<Database>;
  ledger: Kysely<Database>;
  reconcilerSchema: string;
  indexerSchema: string;
  databaseUrl: string;
  /** Both roles of every backend (the fixture takes helia and Kubo strings only). */
  backends: ContentCapableBackend[];
  /** The pin-only backends (`pinOnlyBackends`), after `backends` in the engine's order. */
  pinOnly: Backend[];
  store: DesiredStore;
  reconciler: Reconciler;
  metrics: ReconcilerMetrics;
  config: QuasarConfig;
  /** Makes `cid` desired (an optimistic pin for QUASAR_PIN_TTL from now). */
  want(cid: string, now?: Date): Promise<void>;
  /** Makes every one of `cids` desired, recorded in batches of 1,000 uploads. */
  wantMany(cids: readonly string[], now?: Date): Promise<void>;
  row(backend: Pick<Backend, "id">, cid: string): Promise<LedgerRow | undefined>;
  /** Polls `check` until it holds or `timeoutMs` passes; returns its last value. */
  until(check: () => Promise<boolean>, timeoutMs?: number): Promise<boolean>;
  close(): Promise<void>;
};

export const FAST_ENGINE_ENV = {
  QUASAR_RECONCILE_INTERVAL: "200ms",
  QUASAR_FULL_SWEEP_INTERVAL: "1h",
  QUASAR_RETRY_BASE: "100ms",
  QUASAR_RETRY_MAX: "400ms",
  QUASAR_PIN_INACTIVITY_TIMEOUT: "3s",
  QUASAR_METRICS_PORT: "0",
  QUASAR_LOG_LEVEL: "warn",
} as const;

export async function createEngineFixture(options: {
  backends: string[];
  env?: Record<string, string>;
  /** Start the loops (default true); false leaves stepping to the test. */
  start?: boolean;
  /** An indexer schema Ponder writes (end to end); by default a fresh one with empty tables. */
  indexerSchema?: string;
  /**
   * Indices of backends the engine sees with their pin role only, as it will see an IPFS
   * Cluster or Pinning Service backend (none exists yet). The tests keep both roles.
   */
  pinOnly?: number[];
  /** Backends that play the pin role only (IPFS Cluster), appended after `backends`. */
  pinOnlyBackends?: string[];
  /** The engine's logger (default: pino at QUASAR_LOG_LEVEL on stdout). */
  logger?: Logger;
  /** Engine parameters beyond the configuration. */
  engine?: Pick<CreateReconcilerParams, "sweepProgressMs" | "maxStepChanges">;
}): Promise<EngineFixture> {
  const reconcilerSchema = await createTestSchema("rec");
  const indexerSchema: { schema: string; drop(): Promise<void> } = options.indexerSchema
    ? { schema: options.indexerSchema, drop: async () => {} }
    : await createTestSchema("reci");
  const db = connectDatabase({
    databaseUrl: reconcilerSchema.databaseUrl,
    maxConnections: 10,
    applicationName: "reconciler-test",
  });
  if (!options.indexerSchema) await createIndexerTables(db, indexerSchema.schema);
  await migrateToLatest(db, reconcilerSchema.schema);
  const config = loadConfig({
    ...FAST_ENGINE_ENV,
    ...options.env,
    DATABASE_URL: reconcilerSchema.databaseUrl,
    QUASAR_RECONCILER_SCHEMA: reconcilerSchema.schema,
    QUASAR_INDEXER_SCHEMA: indexerSchema.schema,
  });
  const backends = options.backends.map((raw) =>
    requireContent(createBackend(raw), "serve the reconciler tests"),
  );
  const pinOnly = (options.pinOnlyBackends ?? []).map((raw) => createBackend(raw));
  for (const backend of [...backends, ...pinOnly]) await backend.open();
  const store = createDesiredStore({
    db,
    indexerSchema: indexerSchema.schema,
    reconcilerSchema: reconcilerSchema.schema,
    ttlMs: config.QUASAR_PIN_TTL,
  });
  const metrics = createReconcilerMetrics();
  const reconciler = createReconciler({
    common: { logger: options.logger ?? pino({ level: config.QUASAR_LOG_LEVEL }), metrics },
    db,
    backends: [
      ...backends.map((backend, index) =>
        options.pinOnly?.includes(index) ? { ...backend, content: undefined } : backend,
      ),
      ...pinOnly,
    ],
    desiredStore: store,
    config,
    stopGraceMs: 2_000,
    ...options.engine,
  });
  if (options.start !== false) await reconciler.start();
  const ledger = ledgerDb(db, reconcilerSchema.schema);
  return {
    db,
    ledger,
    reconcilerSchema: reconcilerSchema.schema,
    indexerSchema: indexerSchema.schema,
    databaseUrl: reconcilerSchema.databaseUrl,
    backends,
    pinOnly,
    store,
    reconciler,
    metrics,
    config,
    async want(cid, now = new Date()) {
      await recordUploads(db, {
        schema: reconcilerSchema.schema,
        ttlMs: config.QUASAR_PIN_TTL,
        uploads: [upload(cid, now, { size: 1, uploader: "test", backendId: "elsewhere" })],
      });
    },
    async wantMany(cids, now = new Date()) {
      for (let i = 0; i < cids.length; i += 1_000) {
        await recordUploads(db, {
          schema: reconcilerSchema.schema,
          ttlMs: config.QUASAR_PIN_TTL,
          uploads: cids
            .slice(i, i + 1_000)
            .map((cid) => upload(cid, now, { size: 1, uploader: "test", backendId: "elsewhere" })),
        });
      }
    },
    row: (backend, cid) => getLedgerRow(ledger, backend.id, cid),
    async until(check, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        if (await check()) return true;
        if (Date.now() > deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async close() {
      await reconciler.stop();
      for (const backend of [...backends, ...pinOnly]) await backend.close().catch(() => {});
      await db.destroy();
      await reconcilerSchema.drop();
      await indexerSchema.drop();
    },
  };
}
