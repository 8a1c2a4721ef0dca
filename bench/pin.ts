/**
 * `npm run bench:pin [-- --objects K --rounds R --exclusive]`: pins K small objects through the
 * whole engine (desired store step → ledger → per-backend worker → Kubo RPC) on a real Kubo
 * daemon, and K other objects by calling the same daemon directly through the same backend
 * client with the same concurrency, in one run, alternating in R rounds. The objects are
 * stored on the daemon unpinned first, so pinning never fetches. `--exclusive` declares the daemon Quasar's alone (`?exclusive=true`), which
 * drops the engine's look for a foreign pin before each new pin.
 *
 * The daemon runs alone on core 1 (`taskset`); this process (the engine and the direct
 * client) and its PostgreSQL backends are moved to core 0, so the ratio says whether Quasar
 * keeps Kubo busy rather than how they share cores. `isolated` says whether that worked.
 * CPU per pin is read from /proc: Quasar's (this process + its PostgreSQL backends) and Kubo's,
 * for each side. Last line:
 * {"bench":"pin","backend":"kubo","backendVersion":V,"isolated":I,"objects":K,"exclusive":E,
 *  "engineOpsPerSec":A,"directOpsPerSec":B,"ratio":A/B,"engineP99Ms":…,"directP99Ms":…,
 *  "cpuMsPerPin":{"engine":{"quasar":…,"kubo":…},"direct":{"quasar":…,"kubo":…}}}
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { pino } from "pino";
import { type Backend, createBackend, QUASAR_PIN_NAME } from "@/backends/index.js";
import { loadConfig } from "@/core/config/load.js";
import { connectDatabase } from "@/db/connect.js";
import { createDesiredStore } from "@/db/desired/index.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { recordUploads } from "@/db/uploads/index.js";
import { createReconciler } from "@/reconciler/engine/engine.js";
import { createReconcilerMetrics } from "@/reconciler/engine/metrics.js";
import { createIndexerTables } from "@/test/desired/indexer.js";
import { upload } from "@/test/desired/store-setup.js";
import { startKubo } from "@/test/harness/kubo.js";
import { createTestSchema } from "@/test/harness/postgres.js";
import { pinToCores } from "./cores.js";
import { cpuMeter, postgresBackendPids, processCpuSeconds } from "./proc-cpu.js";

const { values } = parseArgs({
  options: {
    objects: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "8" },
    rounds: { type: "string", default: "4" },
    // Measure a backend declared exclusive (`?exclusive=true`: no look for foreign pins before
    // each new pin). The default measures a shared node, as the connection string ships.
    exclusive: { type: "boolean", default: false },
  },
});
const K = Number(values.objects);
const CONCURRENCY = Number(values.concurrency);
const ROUNDS = Number(values.rounds);
if (!Number.isSafeInteger(ROUNDS) || ROUNDS <= 0)
  throw new Error(`--rounds must be a positive integer, got ${values.rounds}`);
if (!Number.isSafeInteger(K) || K <= 0)
  throw new Error(`--objects must be a positive integer, got ${values.objects}`);

async function pool<T>(
  items: readonly T[],
  concurrency: number,
  run: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await run(item);
      }
    }),
  );
}

async function makeObjects(count: number): Promise<{ cid: CID; bytes: Uint8Array }[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const bytes = new Uint8Array(randomBytes(64));
      return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes };
    }),
  );
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);

async function main(): Promise<void> {
  const schema = await createTestSchema("bench_pin");
  // The desired store reads the indexer's tables; with no indexer running they exist, empty.
  const indexer = await createTestSchema("bench_pin_idx");
  const indexerSchema = indexer.schema;
  const daemon = await startKubo({ cpus: "1" });
  const selfPinned = await pinToCores([process.pid], "0");
  const db = connectDatabase({
    databaseUrl: schema.databaseUrl,
    maxConnections: 8,
    applicationName: "bench-pin",
  });
  let backend: Backend | undefined;
  try {
    await migrateToLatest(db, schema.schema);
    await createIndexerTables(db, indexerSchema);
    backend = createBackend(
      values.exclusive ? `${daemon.connectionString}?exclusive=true` : daemon.connectionString,
    );
    await backend.open();
    const theBackend = backend;

    // Warm-up (not measured) + the two measured sets, all stored on the daemon unpinned.
    const warm = await makeObjects(50);
    const direct = await makeObjects(K);
    const engine = await makeObjects(K);
    log(`storing ${warm.length + 2 * K} blocks unpinned on the daemon…`);
    await pool([...warm, ...direct, ...engine], CONCURRENCY, (o) =>
      daemon.rpc(
        "block/put",
        { format: "raw", "cid-codec": "raw", mhtype: "sha2-256", pin: "false" },
        { field: "file", bytes: o.bytes },
      ),
    );
    await pool(warm, CONCURRENCY, (o) => theBackend.pins.pin(o.cid, { name: QUASAR_PIN_NAME }));

    // Every backend.pin call's latency, by side (the engine's go through the same client).
    const latencies: Record<"direct" | "engine", number[]> = { direct: [], engine: [] };
    let side: "direct" | "engine" = "direct";
    const pin = theBackend.pins.pin.bind(theBackend.pins);
    theBackend.pins.pin = async (cid, options) => {
      const begin = performance.now();
      await pin(cid, options);
      latencies[side].push(performance.now() - begin);
    };
    const directPin = async (objects: typeof direct) => {
      const begin = performance.now();
      await pool(objects, CONCURRENCY, (o) =>
        theBackend.pins.pin(o.cid, { name: QUASAR_PIN_NAME }),
      );
      return (performance.now() - begin) / 1_000;
    };

    const config = loadConfig({
      DATABASE_URL: schema.databaseUrl,
      QUASAR_RECONCILER_SCHEMA: schema.schema,
      QUASAR_INDEXER_SCHEMA: indexerSchema,
      QUASAR_PIN_CONCURRENCY: String(CONCURRENCY),
      // Steps are driven by the bench (stepOnce), not the loop.
      QUASAR_RECONCILE_INTERVAL: "1h",
    });
    const desiredStore = createDesiredStore({
      db,
      indexerSchema,
      reconcilerSchema: schema.schema,
      ttlMs: config.QUASAR_PIN_TTL,
    });
    const reconciler = createReconciler({
      common: { logger: pino({ level: "warn" }), metrics: createReconcilerMetrics() },
      db,
      backends: [theBackend],
      desiredStore,
      config,
    });
    await reconciler.start();
    // The pool's connections exist once it has worked: run one step, then move them to core 0.
    await reconciler.stepOnce();
    const pgPins = async () => postgresBackendPids(db as never, process.pid);
    const pgPinned = await pinToCores(await pgPins(), "0");
    const isolated = daemon.isolated && selfPinned && pgPinned;
    const quasarCpu = { direct: cpuMeter(), engine: cpuMeter() };
    const kuboCpu = { direct: 0, engine: 0 };
    const measured = async (which: "direct" | "engine", run: () => Promise<number>) => {
      side = which;
      const pids = [process.pid, ...(await pgPins())];
      quasarCpu[which].sample(pids, true);
      const kuboBefore = processCpuSeconds(daemon.pid() as number) ?? 0;
      const seconds = await run();
      kuboCpu[which] += (processCpuSeconds(daemon.pid() as number) ?? 0) - kuboBefore;
      quasarCpu[which].sample([process.pid, ...(await pgPins())], false);
      return seconds;
    };
    // One round: the CIDs become desired (recorded as uploads: the API's work, not timed),
    // then the engine's step → ledger → worker pins them, timed until the worker is idle.
    let changes = 0;
    const enginePin = async (objects: typeof engine) => {
      const now = new Date();
      await db.transaction().execute(async (trx) => {
        for (const o of objects) {
          await recordUploads(trx, {
            schema: schema.schema,
            ttlMs: config.QUASAR_PIN_TTL,
            uploads: [
              upload(o.cid.toString(), now, {
                size: o.bytes.length,
                uploader: "bench",
                backendId: "elsewhere",
              }),
            ],
          });
        }
      });
      const begin = performance.now();
      changes += (await reconciler.stepOnce()).changes;
      await reconciler.waitIdle({ timeoutMs: 600_000 });
      return (performance.now() - begin) / 1_000;
    };

    // The two sides alternate in rounds, each going first in every other round: the daemon
    // slows as its pin set grows and its store settles, and neither side should always get
    // the quieter moments.
    let directSeconds = 0;
    let engineSeconds = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const slice = <T>(list: T[]) =>
        list.slice(Math.floor((round * K) / ROUNDS), Math.floor(((round + 1) * K) / ROUNDS));
      const sides = [
        async () => {
          directSeconds += await measured("direct", () => directPin(slice(direct)));
        },
        async () => {
          engineSeconds += await measured("engine", () => enginePin(slice(engine)));
        },
      ];
      if (round % 2 === 1) sides.reverse();
      for (const side of sides) await side();
      log(
        `round ${round + 1}/${ROUNDS}: direct ${directSeconds.toFixed(2)} s, engine ${engineSeconds.toFixed(2)} s so far`,
      );
    }
    await reconciler.stop();

    // Check the result rather than trust it: every object pinned on the daemon and in the ledger.
    let missing = 0;
    await pool(engine, CONCURRENCY, async (o) => {
      if (!(await theBackend.pins.getPin(o.cid, {}))) missing++;
    });
    const pinnedRows = await db
      .withSchema(schema.schema)
      .selectFrom("pin_ledger" as never)
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("status" as never, "=", "pinned" as never)
      .executeTakeFirst();
    if (missing > 0 || Number(pinnedRows?.n) !== K || changes !== K) {
      throw new Error(
        `engine run incomplete: ${missing} missing on the daemon, ${pinnedRows?.n} pinned rows, ${changes} changes`,
      );
    }
    const p99 = (list: number[]) => {
      const sorted = [...list].sort((a, b) => a - b);
      return (
        Math.round(
          (sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))] ?? 0) * 10,
        ) / 10
      );
    };
    const msPerPin = (seconds: number) => Math.round((seconds / K) * 1e6) / 1e3;
    const engineOpsPerSec = K / engineSeconds;
    const directOpsPerSec = K / directSeconds;
    log(`direct ${directSeconds.toFixed(2)} s, engine ${engineSeconds.toFixed(2)} s`);
    process.stdout.write(
      `${JSON.stringify({
        bench: "pin",
        backend: "kubo",
        backendVersion: daemon.version,
        isolated,
        objects: K,
        exclusive: values.exclusive,
        engineOpsPerSec: Math.round(engineOpsPerSec * 10) / 10,
        directOpsPerSec: Math.round(directOpsPerSec * 10) / 10,
        ratio: Math.round((engineOpsPerSec / directOpsPerSec) * 1000) / 1000,
        engineP99Ms: p99(latencies.engine),
        directP99Ms: p99(latencies.direct),
        cpuMsPerPin: {
          engine: { quasar: msPerPin(quasarCpu.engine.seconds()), kubo: msPerPin(kuboCpu.engine) },
          direct: { quasar: msPerPin(quasarCpu.direct.seconds()), kubo: msPerPin(kuboCpu.direct) },
        },
      })}\n`,
    );
  } finally {
    await backend?.close().catch(() => {});
    await db.destroy();
    await daemon.destroy();
    await schema.drop();
    await indexer.drop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exit(1);
  },
);
