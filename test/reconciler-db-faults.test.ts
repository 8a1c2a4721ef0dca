/**
 * The reconciler process (runReconciler, as `quasar reconciler` runs it) while PostgreSQL
 * freezes: with QUASAR_DB_STATEMENT_TIMEOUT its steps fail instead of hanging for the whole
 * freeze, and once the server answers again the steps succeed without a restart. The freeze
 * is a real network fault: a TCP proxy holding every byte (test/harness/freezable-proxy.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import getPort from "get-port";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseBackends } from "@/backends/index.js";
import { loadConfig } from "@/core/config/load.js";
import { connectDatabase } from "@/db/connect.js";
import { getLedgerRow } from "@/db/ledger/ledger.js";
import { runReconciler } from "@/reconciler/main.js";
import { CIDS, CONTRACT_A, pinHash, register } from "./desired/history.js";
import { createIndexerTables, insertEvents, setProgress } from "./desired/indexer.js";
import { type FreezableProxy, startProxy } from "./harness/freezable-proxy.js";
import { createTestSchema, TEST_DATABASE_URL, type TestSchema } from "./harness/postgres.js";

let reconciler: TestSchema;
let indexer: TestSchema;
let proxy: FreezableProxy;
let dir: string;

beforeAll(async () => {
  reconciler = await createTestSchema("recfault");
  indexer = await createTestSchema("recfaulti");
  const db = connectDatabase({ databaseUrl: indexer.databaseUrl, maxConnections: 1 });
  await createIndexerTables(db, indexer.schema);
  await db.destroy();
  const target = new URL(TEST_DATABASE_URL);
  proxy = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
  dir = await mkdtemp(join(tmpdir(), "quasar-recfault-"));
});

afterAll(async () => {
  proxy?.thaw();
  await proxy?.close();
  await reconciler?.drop();
  await indexer?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/**
 * `runReconciler` as `quasar reconciler` runs it, on the proxy, with `env` over the common
 * settings; `failures` gets the time of each "reconcile step failed" line it logs.
 */
function startThroughProxy(env: Record<string, string>, metricsPort: number) {
  const viaProxy = new URL(TEST_DATABASE_URL);
  viaProxy.hostname = "127.0.0.1";
  viaProxy.port = String(proxy.port);
  const config = {
    ...loadConfig({
      DATABASE_URL: viaProxy.toString(),
      QUASAR_RECONCILER_SCHEMA: reconciler.schema,
      QUASAR_INDEXER_SCHEMA: indexer.schema,
      QUASAR_BACKENDS: `helia://${join(dir, "node")}?offline=true`,
      QUASAR_RECONCILE_INTERVAL: "100ms",
      ...env,
    }),
    QUASAR_METRICS_PORT: metricsPort,
  };
  const failures: number[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) {
        if (line.includes("reconcile step failed")) failures.push(Date.now());
      }
      done();
    },
  });
  const controller = new AbortController();
  let ready: () => void = () => {};
  const started = new Promise<void>((resolve) => {
    ready = resolve;
  });
  const running = runReconciler(config, controller.signal, {
    logger: pino({ level: "info" }, sink),
    onReady: () => ready(),
  });
  return { config, failures, controller, started, running };
}

describe("reconciler under a frozen PostgreSQL", () => {
  it("fails its steps within the statement timeout, then resumes by itself", async () => {
    const port = await getPort({ host: "127.0.0.1" });
    const { failures, controller, started, running } = startThroughProxy(
      { QUASAR_DB_STATEMENT_TIMEOUT: "1s", QUASAR_DB_ACQUIRE_TIMEOUT: "1s" },
      port,
    );
    const steps = async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return Number(/quasar_reconciler_step_seconds_count (\d+)/.exec(text)?.[1] ?? "0");
    };
    const waitSteps = async (above: number, timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      while ((await steps()) <= above) {
        if (Date.now() > deadline) throw new Error(`no step after ${above} in ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    };
    try {
      await started;
      await waitSteps(0, 10_000);

      proxy.freeze();
      const frozenAt = Date.now();
      // Let any step already past its queries finish, then count from there.
      await new Promise((resolve) => setTimeout(resolve, 500));
      const beforeFreeze = await steps();
      await new Promise((resolve) => setTimeout(resolve, 9_000));
      const firstFailure = failures.find((at) => at >= frozenAt);
      // A step fails at the 1 s statement deadline (+1 s client margin, plus the wait for
      // the next step), long before the thaw 9.5 s in. (4 s was too tight for a loaded CI.)
      expect(firstFailure).toBeDefined();
      expect((firstFailure as number) - frozenAt).toBeLessThan(6_000);
      expect(await steps()).toBe(beforeFreeze);

      proxy.thaw();
      await waitSteps(beforeFreeze, 10_000);
    } finally {
      proxy.thaw();
      controller.abort();
      await running;
    }
  }, 60_000);
  it("a step whose COMMIT lands but whose answer is lost: its ledger work is re-derived at once, not at the next full sweep", async () => {
    const {
      config,
      failures: lost,
      controller,
      started,
      running,
    } = startThroughProxy({ QUASAR_FULL_SWEEP_INTERVAL: "1h" }, 0);
    const db = connectDatabase({ databaseUrl: TEST_DATABASE_URL, maxConnections: 2 });
    // Content nobody holds: the offline node cannot pin it, so its ledger row stays in the
    // queue, which is all this test needs to see.
    const cid = CIDS[3] as string;
    const backendId = parseBackends(config.QUASAR_BACKENDS)[0]?.id as string;
    try {
      await started;
      // The step that folds this PinHash sends the CID in its desired_cid write: that
      // transaction's COMMIT lands, and its answer is lost.
      proxy.loseNextCommitAnswer(cid);
      await insertEvents(db, indexer.schema, [
        register(CONTRACT_A, { block: 1n }),
        pinHash(CONTRACT_A, cid, { block: 2n }),
      ]);
      await setProgress(db, indexer.schema, 1, { indexed: 2n, finalized: 2n });

      const deadline = Date.now() + 20_000;
      let row: Awaited<ReturnType<typeof getLedgerRow>>;
      for (;;) {
        row = await getLedgerRow(db.withSchema(reconciler.schema), backendId, cid);
        if (row || Date.now() > deadline) break;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      // The fault happened: a step failed, and the desired set holds the CID all the same.
      expect(lost.length).toBeGreaterThan(0);
      const desired = await db
        .withSchema(reconciler.schema)
        .selectFrom("desired_cid")
        .select("cid")
        .where("cid", "=", cid)
        .execute();
      expect(desired).toHaveLength(1);
      // And the backend's ledger has the work, without waiting for the hourly sweep.
      expect(row, "the ledger row of the CID the lost step made desired").toBeDefined();
    } finally {
      controller.abort();
      await running;
      await db.destroy();
    }
  }, 60_000);
});
