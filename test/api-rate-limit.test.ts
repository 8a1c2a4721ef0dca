/**
 * The API's rate limit is shared through PostgreSQL (rate-limiter-flexible's
 * RateLimiterPostgres): two real API processes (api/main.ts) on one database count one limit
 * per client, a restarted process still refuses a client over its limit, API keys and client
 * addresses are counted apart, and a database that fails or stalls never turns a request
 * into a 500 (an in-memory insurance limiter decides meanwhile).
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Kysely } from "kysely";
import { sql } from "kysely";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyIdOf } from "@/api/auth.js";
import { createSharedRateLimiter } from "@/api/rate-limit.js";
import { connectDatabase } from "@/db/connect.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { createTestSchema, TEST_DATABASE_URL, type TestSchema } from "./harness/postgres.js";
import { safeKill, TETHER_WRAPPER, type Tethered, track, untrack } from "./harness/tethered.js";

const ROOT = join(import.meta.dirname, "..");
const LIMIT = 6;
const WINDOW_SECONDS = 15 * 60;
const KEYS = ["key-one-0123456789", "key-two-0123456789"] as const;

type ApiProcess = { url: string; output: () => string; stop(): Promise<void> };

/** api/main.ts in its own node process, tied to this test process's life. */
async function startApi(env: Record<string, string>): Promise<ApiProcess> {
  const wrapper = spawn(
    "sh",
    ["-c", TETHER_WRAPPER, process.execPath, "--import", "tsx", "api/main.ts"],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] },
  );
  const proc: Tethered = { wrapper, pid: undefined };
  track(proc);
  let output = "";
  const exited = once(wrapper, "exit");
  const stop = async () => {
    if (wrapper.exitCode === null) {
      // Closing stdin makes the wrapper SIGTERM the API: its graceful shutdown.
      wrapper.stdin?.end();
      const timer = setTimeout(() => {
        if (proc.pid) safeKill(proc.pid, "SIGKILL");
        wrapper.kill("SIGKILL");
      }, 15_000);
      await exited;
      clearTimeout(timer);
    }
    untrack(proc);
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`the API did not start:\n${output}`)),
        90_000,
      );
      const onData = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-16_000);
        if (proc.pid === undefined) {
          const pid = Number.parseInt(output, 10);
          if (output.includes("\n") && Number.isSafeInteger(pid)) proc.pid = pid;
        }
        const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      wrapper.stdout?.on("data", onData);
      wrapper.stderr?.on("data", onData);
      wrapper.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the API exited (${code}):\n${output}`));
      });
    });
    return { url, output: () => output, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

type Answer = { status: number; retryAfter: string | null; body: string };

/** One limited GET; the body is read in full so the connection is released at once. */
async function get(url: string, key?: string): Promise<Answer> {
  const response = await fetch(`${url}/api/v0/ipfs-provider`, {
    headers: key ? { authorization: `Bearer ${key}` } : {},
  });
  const body = await response.text();
  return { status: response.status, retryAfter: response.headers.get("retry-after"), body };
}

function expectRefused(answer: Answer): void {
  expect(answer.status).toBe(429);
  const retryAfter = Number(answer.retryAfter);
  expect(retryAfter).toBeGreaterThan(WINDOW_SECONDS - 120);
  expect(retryAfter).toBeLessThanOrEqual(WINDOW_SECONDS);
  expect(JSON.parse(answer.body)).toMatchObject({
    error: { reason: "RATE_LIMITED", details: expect.stringMatching(/retry after \d+ s/) },
  });
}

describe("the rate limit shared by API processes through PostgreSQL", () => {
  let schema: TestSchema;
  // biome-ignore lint/suspicious/noExplicitAny: the test reads the limiter's table directly
  let db: Kysely<any>;
  const dirs: string[] = [];
  const apis: ApiProcess[] = [];

  const start = async () => {
    // Each process its own embedded helia store; only the database is shared.
    const dir = await mkdtemp(join(tmpdir(), "quasar-rate-"));
    dirs.push(dir);
    const api = await startApi({
      DATABASE_URL: TEST_DATABASE_URL,
      QUASAR_RECONCILER_SCHEMA: schema.schema,
      QUASAR_INDEXER_SCHEMA: `${schema.schema}_indexer`,
      QUASAR_BACKENDS: `helia://${dir}?offline=true`,
      QUASAR_API_HOST: "127.0.0.1",
      QUASAR_API_PORT: "0",
      QUASAR_RATE_LIMIT: String(LIMIT),
      QUASAR_RATE_LIMIT_WINDOW: "15m",
      QUASAR_API_KEYS: KEYS.join(","),
      QUASAR_LOG_LEVEL: "info",
    });
    apis.push(api);
    return api;
  };

  const points = async (client: string): Promise<number | undefined> => {
    const rows = await sql<{ points: number }>`select points from ${sql.table(
      `${schema.schema}.api_rate_limit`,
    )} where key = ${`api:${client}`}`.execute(db);
    return rows.rows[0]?.points;
  };

  let a: ApiProcess;
  let b: ApiProcess;
  beforeAll(async () => {
    schema = await createTestSchema("ratelimit");
    db = connectDatabase({ databaseUrl: schema.databaseUrl, applicationName: "quasar-test" });
    // Started one after the other: both migrate at start, and the second finds it done.
    a = await start();
    b = await start();
  });
  afterAll(async () => {
    for (const api of apis) await api.stop();
    await db?.destroy();
    await schema?.drop();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("counts one limit for requests split over two processes", async () => {
    const [key] = KEYS;
    for (let i = 0; i < LIMIT; i++) {
      const response = await get(i % 2 === 0 ? a.url : b.url, key);
      expect(response.status, `request ${i + 1}`).toBe(200);
    }
    // Each process saw only LIMIT / 2: a per-process limit would still allow both of these.
    expectRefused(await get(a.url, key));
    expectRefused(await get(b.url, key));
    // The counter is the database's row, keyed by the key id (never the key itself).
    expect(await points(`key:${keyIdOf(key)}`)).toBeGreaterThanOrEqual(LIMIT + 1);
    const keys = await sql<{ key: string }>`select key from ${sql.table(
      `${schema.schema}.api_rate_limit`,
    )}`.execute(db);
    expect(JSON.stringify(keys.rows)).not.toContain(key);
    // Operational routes are never limited.
    const health = await fetch(`${a.url}/healthz`);
    await health.text();
    expect(health.status).toBe(200);
  });

  it("counts API keys and client addresses apart", async () => {
    const [limited, other] = KEYS;
    expectRefused(await get(b.url, limited));
    // Another key and an anonymous client (counted by address) each have a window of their own.
    for (let i = 0; i < LIMIT; i++) {
      expect((await get(i % 2 === 0 ? b.url : a.url, other)).status).toBe(200);
    }
    expectRefused(await get(a.url, other));
    for (let i = 0; i < LIMIT; i++) {
      expect((await get(i % 2 === 0 ? a.url : b.url)).status, `anonymous ${i + 1}`).toBe(200);
    }
    expectRefused(await get(b.url));
    // A key the API does not know counts as its caller's address, so it escapes nothing.
    expectRefused(await get(a.url, "not-a-valid-key"));
    expect(await points("ip:127.0.0.1")).toBeGreaterThanOrEqual(LIMIT + 1);
  });

  it("still refuses a client over its limit after the process restarts", async () => {
    const [key] = KEYS;
    await a.stop();
    a = await start();
    expectRefused(await get(a.url, key));
    expectRefused(await get(a.url));
    expect(await points(`key:${keyIdOf(key)}`)).toBeGreaterThanOrEqual(LIMIT + 2);
  });
});

describe("the shared limiter when the database fails", () => {
  type Line = { level: number; msg: string };
  const capture = () => {
    const lines: Line[] = [];
    const logger = pino(
      { level: "info" },
      { write: (line: string) => lines.push(JSON.parse(line) as Line) },
    );
    return { lines, logger };
  };

  it("decides in memory when PostgreSQL is unreachable: never throws, still limits", async () => {
    // Nothing listens on port 1 of this machine: every connection is refused at once.
    const unreachable = connectDatabase({
      databaseUrl: "postgresql://postgres@127.0.0.1:1/postgres",
    });
    const { lines, logger } = capture();
    try {
      const limiter = createSharedRateLimiter({
        limit: 3,
        windowMs: 60_000,
        db: unreachable,
        schema: "nowhere",
        logger,
      });
      const decisions = [];
      for (let i = 0; i < 5; i++) decisions.push(await limiter.take("ip:10.0.0.1", Date.now()));
      expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
      expect(decisions[3]).toMatchObject({ allowed: false, retryAfterSeconds: 60 });
      expect((await limiter.take("ip:10.0.0.2", Date.now())).allowed).toBe(true);
      // One warning for the outage, not one per request.
      const warnings = lines.filter((line) => /rate-limit store failed/.test(line.msg));
      expect(warnings).toHaveLength(1);
    } finally {
      await unreachable.destroy();
    }
  });

  it("decides in memory when a query stalls, and shares the limit again once it answers", async () => {
    const schema = await createTestSchema("ratelimit");
    const db = connectDatabase({ databaseUrl: schema.databaseUrl, maxConnections: 4 });
    const blocker = connectDatabase({ databaseUrl: schema.databaseUrl, maxConnections: 1 });
    const { lines, logger } = capture();
    try {
      await migrateToLatest(db, schema.schema);
      const limiter = createSharedRateLimiter({
        limit: 2,
        windowMs: 60_000,
        db,
        schema: schema.schema,
        logger,
        storeTimeoutMs: 300,
      });
      expect((await limiter.take("ip:10.0.0.3", Date.now())).allowed).toBe(true);
      // A transaction holding the table's lock makes every limiter query wait: a real stall.
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let locked: () => void = () => {};
      const isLocked = new Promise<void>((resolve) => {
        locked = resolve;
      });
      const holding = blocker.transaction().execute(async (trx) => {
        await sql`lock table ${sql.table(`${schema.schema}.api_rate_limit`)} in access exclusive mode`.execute(
          trx,
        );
        locked();
        await released;
      });
      await isLocked;
      const started = performance.now();
      const stalled = await limiter.take("ip:10.0.0.3", Date.now());
      expect(performance.now() - started).toBeLessThan(3_000);
      // Decided by the insurance limiter, which had not seen the first request.
      expect(stalled.allowed).toBe(true);
      expect(lines.some((line) => /did not answer in 300 ms/.test(JSON.stringify(line)))).toBe(
        true,
      );
      release();
      await holding;
      // The stalled query runs once the lock is gone, so the table counts both requests and
      // the third is refused by the shared count.
      const counted = async () =>
        (
          await sql<{ points: number }>`select points from ${sql.table(
            `${schema.schema}.api_rate_limit`,
          )} where key = 'api:ip:10.0.0.3'`.execute(db)
        ).rows[0]?.points;
      for (let i = 0; i < 50 && (await counted()) !== 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(await counted()).toBe(2);
      const third = await limiter.take("ip:10.0.0.3", Date.now());
      expect(third.allowed).toBe(false);
      expect(lines.some((line) => /store is back/.test(line.msg))).toBe(true);
    } finally {
      await blocker.destroy();
      await db.destroy();
      await schema.drop();
    }
  });
});
