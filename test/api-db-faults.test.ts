/**
 * The API process (runApi: the real server, pool, store and an embedded helia backend)
 * while its PostgreSQL is down or stops answering. The shared test server cannot be frozen
 * (other suites use it), so the API reaches it through a TCP proxy in this process that can
 * stop forwarding (test/harness/freezable-proxy.ts): to the API that is exactly a frozen
 * server (connections open, no bytes back), a real network fault rather than a mock.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningApi, runApi } from "@/api/main.js";
import { KUBO_ADD_DEFAULTS } from "@/backends/add-options.js";
import { parseBackends, QUASAR_PIN_NAME, requireContent } from "@/backends/index.js";
import { loadConfig } from "@/core/config/load.js";
import { connectDatabase } from "@/db/connect.js";
import { runReconciler } from "@/reconciler/main.js";
import { createIndexerTables } from "./desired/indexer.js";
import { type FreezableProxy, startProxy } from "./harness/freezable-proxy.js";
import { createTestSchema, TEST_DATABASE_URL, type TestSchema } from "./harness/postgres.js";

async function timed<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await run();
  return { value, ms: performance.now() - started };
}

let schema: TestSchema;
let proxy: FreezableProxy;
let dir: string;
let api: RunningApi;
let config: ReturnType<typeof loadConfig>;
const controller = new AbortController();

beforeAll(async () => {
  schema = await createTestSchema("dbfault");
  const target = new URL(TEST_DATABASE_URL);
  proxy = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const viaProxy = new URL(TEST_DATABASE_URL);
  viaProxy.hostname = "127.0.0.1";
  viaProxy.port = String(proxy.port);
  dir = await mkdtemp(join(tmpdir(), "quasar-dbfault-"));
  config = loadConfig({
    DATABASE_URL: viaProxy.toString(),
    QUASAR_RECONCILER_SCHEMA: schema.schema,
    QUASAR_INDEXER_SCHEMA: `${schema.schema}_indexer`,
    QUASAR_BACKENDS: `helia://${dir}?offline=true`,
    QUASAR_API_PORT: "0",
    QUASAR_RATE_LIMIT: "0",
    QUASAR_DB_STATEMENT_TIMEOUT: "2s",
    QUASAR_DB_ACQUIRE_TIMEOUT: "2s",
  });
  api = await runApi(config, controller.signal, { logger: pino({ level: "silent" }) });
});

afterAll(async () => {
  proxy?.thaw();
  controller.abort();
  await api?.closed;
  await proxy?.close();
  await schema?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function add(text: string): Promise<Response> {
  const form = new FormData();
  form.append("entry", new Blob([text]));
  return fetch(`${api.url}/api/v0/add`, {
    method: "POST",
    body: form,
    signal: AbortSignal.timeout(30_000),
  });
}

describe("PostgreSQL down or frozen under the API", () => {
  it("answers 503 with a JSON reason on every route while the database is down", async () => {
    proxy.cut();
    try {
      const cid = "bafkreiccp6j4v7m4ygn6n3wahzmqzhdm36pwrcs6v4q7vdlsgupcwfp5au";
      const reads = ["/api/v0/pins?limit=5", `/api/v0/pins/${cid}`, "/api/v0/storageContracts"];
      for (const path of reads) {
        const response = await fetch(`${api.url}${path}`);
        expect(response.status, path).toBe(503);
        expect(await response.json(), path).toMatchObject({
          error: { reason: "DATABASE_UNAVAILABLE" },
        });
      }
      const upload = await add(`while down ${Date.now()}`);
      expect(upload.status).toBe(503);
      const dag = await fetch(`${api.url}/api/v0/dag/put`, {
        method: "POST",
        body: JSON.stringify({ down: Date.now() }),
        headers: { "content-type": "application/json" },
      });
      expect(dag.status).toBe(503);
      const kubo = await fetch(`${api.url}/kubo/api/v0/add`, {
        method: "POST",
        body: await (async () => {
          const form = new FormData();
          form.append("file", new Blob([`kubo while down ${Date.now()}`]));
          return form;
        })(),
      });
      expect(kubo.status).toBe(503);
      expect(await kubo.json()).toMatchObject({ Code: 0, Type: "error" });
      expect((await fetch(`${api.url}/readyz`)).status).toBe(503);
    } finally {
      proxy.thaw();
    }
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).not.toMatch(/quasar_api_requests_total\{[^}]*status="500"\}/);
  }, 60_000);

  it("a COMMIT that lands but whose answer is lost: 503, yet the reconciler pins the upload soon", async () => {
    const started = new Date();
    proxy.loseNextCommitAnswer();
    const refused = await add(`commit answer lost ${Date.now()}`);
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ error: { reason: "STORAGE_FAILED" } });

    const db = connectDatabase({ databaseUrl: TEST_DATABASE_URL });
    const reconcilerStop = new AbortController();
    let reconciling: Promise<void> | undefined;
    try {
      // The transaction committed although its client could not know: the upload is desired.
      const recorded = await sql<{ cid: string }>`
        select cid from ${sql.table(`${schema.schema}.optimistic_pin`)}
        where created_at >= ${started}`.execute(db);
      expect(recorded.rows).toHaveLength(1);
      const cid = recorded.rows[0]?.cid as string;

      // A reconciler (in this process, straight to PostgreSQL, the same helia repository)
      // takes the intent the API never pinned once its grace has passed: within a minute, not
      // after minutes of a desired CID pinned nowhere.
      await createIndexerTables(db, config.QUASAR_INDEXER_SCHEMA);
      reconciling = runReconciler(
        {
          ...config,
          DATABASE_URL: TEST_DATABASE_URL,
          QUASAR_RECONCILE_INTERVAL: 200,
          QUASAR_METRICS_PORT: 0,
        },
        reconcilerStop.signal,
        { logger: pino({ level: "silent" }), stopGraceMs: 2_000 },
      );
      const deadline = Date.now() + 60_000;
      let status: string | undefined;
      while (Date.now() < deadline) {
        const rows = await sql<{ status: string }>`
          select status from ${sql.table(`${schema.schema}.pin_ledger`)}
          where cid = ${cid}`.execute(db);
        status = rows.rows[0]?.status;
        if (status === "pinned") break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(status, `the ledger row of ${cid}`).toBe("pinned");
    } finally {
      reconcilerStop.abort();
      await reconciling;
      await db.destroy();
    }
  }, 120_000);

  it("frozen: readyz, reads and uploads answer 503 within bounds, nothing is pinned, and all recovers", async () => {
    expect((await add(`before ${Date.now()}`)).status).toBe(201);
    expect((await fetch(`${api.url}/readyz`)).status).toBe(200);

    proxy.freeze();
    const frozenText = `uploaded while frozen ${Date.now()}`;
    try {
      const ready = await timed(() => fetch(`${api.url}/readyz`));
      expect(ready.value.status).toBe(503);
      expect(await ready.value.json()).toMatchObject({ ready: false, database: false });
      expect(ready.ms).toBeLessThan(2_000);

      // A read route: 503 with a JSON reason once the 2 s statement deadline (+1 s) passes.
      const pins = await timed(() => fetch(`${api.url}/api/v0/pins?limit=5`));
      expect(pins.value.status).toBe(503);
      expect(await pins.value.json()).toMatchObject({
        error: { reason: "DATABASE_UNAVAILABLE" },
      });
      expect(pins.ms).toBeLessThan(6_000);

      const upload = await timed(() => add(frozenText));
      expect(upload.value.status).toBe(503);
      expect(await upload.value.json()).toMatchObject({ error: { reason: "STORAGE_FAILED" } });
      expect(upload.ms).toBeLessThan(8_000);
    } finally {
      proxy.thaw();
    }

    // The pool threw away the connections stuck in the freeze: answers come back at once.
    const deadline = Date.now() + 10_000;
    while ((await fetch(`${api.url}/readyz`)).status !== 200) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect((await fetch(`${api.url}/api/v0/pins?limit=5`)).status).toBe(200);
    expect((await add(`after ${Date.now()}`)).status).toBe(201);

    controller.abort();
    await api.closed;
    const [opened] = parseBackends([`helia://${dir}?offline=true`]);
    if (!opened) throw new Error("no backend");
    const backend = requireContent(opened, "hash the refused upload");
    await backend.open();
    try {
      // The refused upload's CID, computed as the upload computed it (Kubo's defaults), and
      // without storing anything: only-hash.
      const { cid } = await backend.content.addFile(
        (async function* () {
          yield new TextEncoder().encode(frozenText);
        })(),
        { name: QUASAR_PIN_NAME, pin: false, unixfs: { ...KUBO_ADD_DEFAULTS, onlyHash: true } },
      );
      // No record (records are keyed by CIDv1) and no pin, under either spelling.
      const db = connectDatabase({ databaseUrl: TEST_DATABASE_URL });
      try {
        const rows = await sql<{ n: number }>`
          select count(*)::int as n from ${sql.table(`${schema.schema}.optimistic_pin`)}
          where cid = ${cid.toV1().toString()}`.execute(db);
        expect(rows.rows[0]?.n).toBe(0);
      } finally {
        await db.destroy();
      }
      expect(await backend.pins.getPin(cid, {})).toBeUndefined();
      expect(await backend.pins.getPin(cid.toV1(), {})).toBeUndefined();
      expect(await backend.content.hasBlock(cid, {})).toBe(true); // it was stored, only never pinned
    } finally {
      await backend.close();
    }
  }, 120_000);
});
