import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import getPort from "get-port";
import type { Kysely } from "kysely";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QUASAR_PIN_NAME } from "@/backends/pin-backend.js";
import { collectStatus, formatStatus } from "@/cli/commands/status.js";
import { loadConfig } from "@/core/config/load.js";
import { connectDatabase } from "@/db/connect.js";
import type { Database } from "@/db/database.js";
import { getLedgerRow, ledgerDb } from "@/db/ledger/ledger.js";
import { recordUploads } from "@/db/uploads/index.js";
import type { Reconciler } from "@/reconciler/engine/engine.js";
import { runReconciler } from "@/reconciler/main.js";
import { createIndexerTables } from "./desired/indexer.js";
import { upload } from "./desired/store-setup.js";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";
import { FAST_ENGINE_ENV } from "./reconciler-fixture.js";

async function* bytes(data: Uint8Array) {
  yield data;
}

// Issue 9 point 4: QUASAR_BACKENDS='helia://…,ipfs://127.0.0.1:<closed port>' used to stop the
// reconciler at start ("cannot open backend"), so nothing converged, helia included. The whole
// process runs here as `quasar reconciler` runs it; the daemon starts late on the port the
// reconciler was configured with.
describe("a backend that cannot be opened at start", () => {
  let reconcilerSchema: TestSchema;
  let indexerSchema: TestSchema;
  let dir: string;
  let db: Kysely<Database>;
  let daemon: IpfsDaemon | undefined;
  const controller = new AbortController();
  let running: Promise<void> | undefined;

  beforeAll(async () => {
    reconcilerSchema = await createTestSchema("recdown");
    indexerSchema = await createTestSchema("recdowni");
    db = connectDatabase({
      databaseUrl: reconcilerSchema.databaseUrl,
      maxConnections: 2,
    });
    await createIndexerTables(db, indexerSchema.schema);
    dir = await mkdtemp(join(tmpdir(), "quasar-backend-down-"));
  });
  afterAll(async () => {
    controller.abort();
    await running?.catch(() => {});
    await daemon?.destroy();
    await db?.destroy();
    await reconcilerSchema?.drop();
    await indexerSchema?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("converges the others, shows it down, and converges it too once it answers", async () => {
    // Free now, nothing listens: connections are refused until the daemon starts on it.
    const kuboPort = await getPort({ host: "127.0.0.1" });
    const metricsPort = await getPort({ host: "127.0.0.1" });
    const kuboLabel = `ipfs://127.0.0.1:${kuboPort}`;
    const env = {
      ...FAST_ENGINE_ENV,
      DATABASE_URL: reconcilerSchema.databaseUrl,
      QUASAR_RECONCILER_SCHEMA: reconcilerSchema.schema,
      QUASAR_INDEXER_SCHEMA: indexerSchema.schema,
      QUASAR_BACKENDS: `helia://${join(dir, "helia")}?offline=true,${kuboLabel}`,
      // Both backends must hold every CID: not ready while one is down.
      QUASAR_MIN_REPLICAS: "2",
      QUASAR_METRICS_PORT: String(metricsPort),
    };
    const config = loadConfig(env);

    let onReady: (reconciler: Reconciler) => void = () => {};
    const ready = new Promise<Reconciler>((resolve) => {
      onReady = resolve;
    });
    running = runReconciler(config, controller.signal, {
      logger: pino({ level: "silent" }),
      stopGraceMs: 2_000,
      onReady: ({ reconciler }) => onReady(reconciler),
    });
    // Before the fix, runReconciler rejected here with "cannot open backend ipfs://…".
    const reconciler = await Promise.race([
      ready,
      running.then(() => {
        throw new Error("the reconciler stopped on its own");
      }),
    ]);

    const heliaWorker = reconciler.workers.find((w) => w.backend.designator === "helia");
    const kuboWorker = reconciler.workers.find((w) => w.backend.designator === "ipfs");
    if (!heliaWorker || !kuboWorker) throw new Error("expected a helia and an ipfs worker");
    const helia = heliaWorker.backend;
    const kubo = kuboWorker.backend;
    expect(kuboWorker.isUp()).toBe(false);
    expect(heliaWorker.isUp()).toBe(true);

    // Content on helia (as an upload stores it), made desired the way uploads do.
    const { cid } = await helia.content!.addFile(bytes(new Uint8Array(randomBytes(4_096))), {
      name: QUASAR_PIN_NAME,
      pin: false,
    });
    const text = cid.toV1().toString();
    // Recorded as an upload stored on another node ("elsewhere"): the engine itself pins it
    // on both backends, with no grace period for an API pin.
    await recordUploads(db, {
      schema: reconcilerSchema.schema,
      ttlMs: config.QUASAR_PIN_TTL,
      uploads: [
        upload(text, new Date(), { size: 4_096, uploader: "test", backendId: "elsewhere" }),
      ],
    });
    const ledger = ledgerDb(db, reconcilerSchema.schema);
    const statusOn = async (backendId: string) =>
      (await getLedgerRow(ledger, backendId, text))?.status;
    const until = async (check: () => Promise<boolean>, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while (!(await check())) {
        if (Date.now() > deadline) return false;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return true;
    };
    const metricsUrl = `http://127.0.0.1:${metricsPort}`;
    const metrics = async () => (await fetch(`${metricsUrl}/metrics`)).text();
    const upGauge = (body: string, label: string) =>
      body.match(
        new RegExp(
          `quasar_reconciler_backend_up\\{backend="${label.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}"\\} (\\d)`,
        ),
      )?.[1];

    // The other backend converges while this one is down.
    expect(await until(async () => (await statusOn(helia.id)) === "pinned", 30_000)).toBe(true);
    expect(await statusOn(kubo.id)).toBe("queued");

    // Down in the metrics…
    const downMetrics = await metrics();
    expect(upGauge(downMetrics, kuboLabel)).toBe("0");
    expect(upGauge(downMetrics, helia.label)).toBe("1");
    expect(downMetrics).toMatch(/quasar_reconciler_ready 0/);
    // …in the readiness answer (1 of the 2 required backends up)…
    const notReady = await fetch(`${metricsUrl}/ready`);
    expect(notReady.status).toBe(503);
    const notReadyBody = (await notReady.json()) as {
      ready: boolean;
      up: number;
      required: number;
      backends: { label: string; up: boolean; lastError: string | null }[];
    };
    expect(notReadyBody).toMatchObject({ ready: false, up: 1, required: 2 });
    const kuboHealth = notReadyBody.backends.find((b) => b.label === kuboLabel);
    expect(kuboHealth?.up).toBe(false);
    expect(kuboHealth?.lastError).toMatch(/unavailable/);
    expect((await fetch(`${metricsUrl}/health`)).status).toBe(200);
    // …and in `quasar status`, with its last error.
    const downStatus = await collectStatus(env);
    const kuboLine = downStatus.backendHealth?.find((line) => line.label === kuboLabel);
    expect(kuboLine).toMatchObject({ state: "down" });
    expect(kuboLine?.lastError).toMatch(/unavailable/);
    expect(downStatus.backendHealth?.find((line) => line.label === helia.label)?.state).toBe("up");
    expect(formatStatus(downStatus)).toMatch(new RegExp(`${kuboLabel}\\s+down`));

    // Its ledger work is lost while it is down, as a step whose COMMIT answer is lost leaves it
    // (test/reconciler-db-faults.test.ts makes that fault; here it is made directly, since the
    // two faults cannot be timed together on demand): only a sweep of this backend re-derives
    // it, and the start-up sweep skipped it. The hourly sweep must not be what brings it back.
    await db
      .withSchema(reconcilerSchema.schema)
      .deleteFrom("pin_ledger")
      .where("backend_id", "=", kubo.id)
      .where("cid", "=", text)
      .execute();

    // The daemon comes up on that port: the reconciler opens it, sweeps it and converges it
    // (the offline daemon cannot fetch the content, so it is copied from helia as a CAR).
    daemon = await startIpfsDaemon({ port: kuboPort });
    expect(await until(async () => (await statusOn(kubo.id)) === "pinned", 60_000)).toBe(true);
    expect(await kubo.pins.getPin(cid.toV1(), {})).toMatchObject({ name: QUASAR_PIN_NAME });
    const upMetrics = await metrics();
    expect(upGauge(upMetrics, kuboLabel)).toBe("1");
    expect(upMetrics).toMatch(/quasar_reconciler_ready 1/);
    expect((await fetch(`${metricsUrl}/ready`)).status).toBe(200);
    expect(
      await until(
        async () =>
          (await collectStatus(env)).backendHealth?.find((line) => line.label === kuboLabel)
            ?.state === "up",
        15_000,
      ),
    ).toBe(true);

    controller.abort();
    await expect(running).resolves.toBeUndefined();
  }, 240_000);
});
