import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseBackends } from "@/backends/index.js";
import { loadConfig } from "@/core/config/load.js";
import { connectDatabase } from "@/db/connect.js";
import { recordUploads } from "@/db/uploads/record.js";
import { ReconcilerStartupError } from "@/reconciler/errors.js";
import { runReconciler } from "@/reconciler/main.js";
import { createIndexerTables } from "./desired/indexer.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";
import { until } from "./harness/until.js";

// runReconciler as `quasar reconciler` and reconciler/main.ts call it, in this process.
describe("runReconciler", () => {
  let reconciler: TestSchema;
  let indexer: TestSchema;
  let dir: string;

  beforeAll(async () => {
    reconciler = await createTestSchema("recmain");
    indexer = await createTestSchema("recmaini");
    const db = connectDatabase({ databaseUrl: indexer.databaseUrl, maxConnections: 1 });
    await createIndexerTables(db, indexer.schema);
    await db.destroy();
    dir = await mkdtemp(join(tmpdir(), "quasar-main-"));
  });
  afterAll(async () => {
    await reconciler?.drop();
    await indexer?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const configWith = (backends: string) =>
    loadConfig({
      DATABASE_URL: reconciler.databaseUrl,
      QUASAR_RECONCILER_SCHEMA: reconciler.schema,
      QUASAR_INDEXER_SCHEMA: indexer.schema,
      QUASAR_BACKENDS: backends,
      QUASAR_METRICS_PORT: "0",
      QUASAR_RECONCILE_INTERVAL: "100ms",
    });

  it("refuses to start on a bad connection string, naming it without its secret", async () => {
    const error = await runReconciler(
      configWith("cluster9+https://pins.example?token=SECRET123"),
      new AbortController().signal,
      { logger: pino({ level: "silent" }) },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReconcilerStartupError);
    const text = `${(error as Error).message} ${String((error as Error).cause)}`;
    expect(text).toMatch(/cluster9/);
    expect(text).toMatch(/ipfs:\/\/host:port/);
    expect(text).not.toContain("SECRET123");
  });

  it("migrates, serves /metrics, runs, and stops cleanly when its signal aborts", async () => {
    const config = loadConfig({
      DATABASE_URL: reconciler.databaseUrl,
      QUASAR_RECONCILER_SCHEMA: reconciler.schema,
      QUASAR_INDEXER_SCHEMA: indexer.schema,
      QUASAR_BACKENDS: `helia://${join(dir, "node")}?offline=true`,
      QUASAR_METRICS_PORT: "0",
      QUASAR_RECONCILE_INTERVAL: "100ms",
    });
    // Port 0 is "disabled" in the schema: pick a real free one for this run.
    const { default: getPort } = await import("get-port");
    const port = await getPort({ host: "127.0.0.1" });
    const controller = new AbortController();
    let ready: (port: number | undefined) => void = () => {};
    const readyPort = new Promise<number | undefined>((resolve) => {
      ready = resolve;
    });
    const running = runReconciler({ ...config, QUASAR_METRICS_PORT: port }, controller.signal, {
      logger: pino({ level: "silent" }),
      onReady: ({ metricsPort }) => ready(metricsPort),
    });
    expect(await readyPort).toBe(port);
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(body).toMatch(/quasar_reconciler_backend_up\{backend="helia:\/\/[^"]+"\} 1/);
    expect(body).toMatch(/quasar_reconciler_desired_cids/);
    controller.abort();
    await expect(running).resolves.toBeUndefined();
    await expect(fetch(`http://127.0.0.1:${port}/metrics`)).rejects.toThrow();
  });

  it("takes an upload at once, not after its interval: the queue wakes it", async () => {
    const config = { ...configWith(`helia://${join(dir, "wake")}?offline=true`) };
    // An interval no test waits for: only a wake-up makes a step in time.
    config.QUASAR_RECONCILE_INTERVAL = 600_000;
    const { default: getPort } = await import("get-port");
    config.QUASAR_METRICS_PORT = await getPort({ host: "127.0.0.1" });
    const [backend] = parseBackends(config.QUASAR_BACKENDS);
    const db = connectDatabase({ databaseUrl: reconciler.databaseUrl, maxConnections: 2 });
    const controller = new AbortController();
    let ready: () => void = () => {};
    const readyNow = new Promise<void>((resolve) => {
      ready = resolve;
    });
    const running = runReconciler(config, controller.signal, {
      logger: pino({ level: "silent" }),
      onReady: () => ready(),
    });
    const upload = (cid: string) =>
      recordUploads(db, {
        schema: reconciler.schema,
        ttlMs: config.QUASAR_PIN_TTL,
        uploads: [
          {
            cid,
            size: 1,
            uploader: "test",
            backendId: backend?.id ?? "",
            now: new Date(),
            pinnedOnBackend: false,
            pinDeadlineMs: config.QUASAR_PIN_DEADLINE,
          },
        ],
      });
    const desired = async (cid: string) =>
      (await db
        .withSchema(reconciler.schema)
        .selectFrom("desired_cid")
        .select("cid")
        .where("cid", "=", cid)
        .executeTakeFirst()) !== undefined;
    try {
      await readyNow;
      const first = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
      const second = "bafkreidvbhs33ighmljlvr7zbv2ywwzcmp5adtf4kqvlly67cy56bdtmve";
      await upload(first);
      await until(() => desired(first), 15_000, 50);
      // Whatever step took the first, the loop now pauses for its interval.
      await upload(second);
      await until(() => desired(second), 15_000, 50);
      // Operators see it: listening, and the announcements heard.
      const body = await (
        await fetch(`http://127.0.0.1:${config.QUASAR_METRICS_PORT}/metrics`)
      ).text();
      expect(body).toMatch(/^quasar_reconciler_listening 1$/m);
      expect(
        Number(/^quasar_reconciler_wakeups_total (\d+)$/m.exec(body)?.[1]),
      ).toBeGreaterThanOrEqual(2);
    } finally {
      controller.abort();
      await running;
      await db.destroy();
    }
  });
});
