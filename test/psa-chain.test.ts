import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackend } from "@/backends/index.js";
import { loadConfig } from "@/core/config/load.js";
import { connectDatabase } from "@/db/connect.js";
import { createDesiredStore } from "@/db/desired/index.js";
import { getLedgerRow, ledgerDb } from "@/db/ledger/ledger.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { recordUploads } from "@/db/uploads/index.js";
import { createReconciler, type Reconciler } from "@/reconciler/engine/engine.js";
import { createReconcilerMetrics } from "@/reconciler/engine/metrics.js";
import { createIndexerTables } from "./desired/indexer.js";
import { upload } from "./desired/store-setup.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";
import { type PsaProvider, startPsaProvider } from "./psa-provider.js";
import { FAST_ENGINE_ENV } from "./reconciler-fixture.js";

/**
 * One Quasar pinning into another: Quasar A's reconciler has a single backend,
 * `psa+http://<Quasar B>/psa?token=…`; Quasar B pins on its Kubo. A desired CID ends pinned in
 * A's ledger and on B's Kubo; released, A deletes its request and B unpins.
 */
describe("Quasar A → psa+http → Quasar B", () => {
  let provider: PsaProvider;
  let schema: TestSchema;
  let indexer: TestSchema;
  let reconciler: Reconciler;
  const db = connectDatabase({
    databaseUrl: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres",
    maxConnections: 5,
  });
  let backendId = "";

  beforeAll(async () => {
    provider = await startPsaProvider();
    schema = await createTestSchema("psaa");
    indexer = await createTestSchema("psai");
    await createIndexerTables(db, indexer.schema);
    await migrateToLatest(db, schema.schema);
    const config = loadConfig({
      ...FAST_ENGINE_ENV,
      QUASAR_RECONCILER_SCHEMA: schema.schema,
      QUASAR_INDEXER_SCHEMA: indexer.schema,
      QUASAR_PIN_TTL: "3s",
    });
    const backend = createBackend(
      `psa+http://${provider.url.slice("http://".length)}?token=${provider.key}`,
    );
    backendId = backend.id;
    await backend.open();
    reconciler = createReconciler({
      common: { logger: pino({ level: "warn" }), metrics: createReconcilerMetrics() },
      db,
      backends: [backend],
      desiredStore: createDesiredStore({
        db,
        indexerSchema: indexer.schema,
        reconcilerSchema: schema.schema,
        ttlMs: config.QUASAR_PIN_TTL,
      }),
      config,
      stopGraceMs: 2_000,
    });
    await reconciler.start();
  }, 120_000);
  afterAll(async () => {
    await reconciler?.stop();
    await db.destroy();
    await schema?.drop();
    await indexer?.drop();
    await provider?.close();
  });

  const until = async (check: () => Promise<boolean>, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  };

  it("pins through the provider, and releases only its own request when the CID expires", async () => {
    const cid = (await provider.addUnpinned(new TextEncoder().encode("A into B"))).toString();
    await recordUploads(db, {
      schema: schema.schema,
      ttlMs: 3_000,
      uploads: [upload(cid, new Date(), { size: 8, uploader: "test", backendId: "elsewhere" })],
    });
    const ledger = ledgerDb(db, schema.schema);
    expect(
      await until(async () => (await getLedgerRow(ledger, backendId, cid))?.status === "pinned"),
    ).toBe(true);
    expect(await provider.pinnedOnKubo(cid)).toBe(true);
    // The TTL runs out: A deletes its request at B, and B (no other request) unpins.
    expect(
      await until(async () => (await getLedgerRow(ledger, backendId, cid))?.status === "unpinned"),
    ).toBe(true);
    const left = await fetch(
      `${provider.url}/pins?cid=${cid}&status=queued,pinning,pinned,failed`,
      {
        headers: { authorization: `Bearer ${provider.key}` },
      },
    );
    expect(((await left.json()) as { count: number }).count).toBe(0);
    expect(await until(async () => !(await provider.pinnedOnKubo(cid)))).toBe(true);
  }, 60_000);
});
