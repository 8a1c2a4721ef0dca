/**
 * `npm run bench:psa [-- --pins N --posts P --lookups L]`
 *
 * The served Pinning Service API at scale: N requests (default 1,000,000) stored under one key
 * (generated inside PostgreSQL with one INSERT … SELECT generate_series, never in this
 * process's memory, one ms apart so `created` is unique), then through the real HTTP API:
 *   - P `POST /pins` (default 1,000) of fresh CIDs: p99;
 *   - `GET /pins?limit=1000&status=queued,pinning,pinned,failed` paging by `before` through
 *     everything, as Kubo pages: p99 per page and the total time;
 *   - L `GET /pins?cid=…` (default 1,000) of posted CIDs: p99.
 * The database is the local PostgreSQL (DATABASE_URL), in a schema of its own, dropped after.
 *
 * Last line:
 * {"bench":"psa","pins":N,"postP99Ms":…,"postP50Ms":…,"pageP99Ms":…,"pageP50Ms":…,"pages":…,
 *  "pagingSeconds":…,"dbPageP99Ms":…,"loadAverage":…,"cidP99Ms":…,"cidP50Ms":…,
 *  "goals":{"p99Ms":50,"pagingSeconds":60},"met":{…}}
 * The server and the client share this process (and its one event loop), so a page's time
 * includes the client's parsing of it; `dbPageP99Ms` is the database's share alone, and
 * `loadAverage` says how busy the machine was.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { serve } from "@hono/node-server";
import { sql } from "kysely";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import pino from "pino";
import { createApp } from "@/api/app.js";
import { createApiStore } from "@/api/store.js";
import { parseBackends } from "@/backends/index.js";
import { keyIdOf } from "@/core/api-keys.js";
import { loadConfig } from "@/core/config/load.js";
import { connectDatabase } from "@/db/connect.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { createTestSchema } from "@/test/harness/postgres.js";
import { percentile } from "./percentile.js";

const { values } = parseArgs({
  options: {
    pins: { type: "string", default: "1000000" },
    posts: { type: "string", default: "1000" },
    lookups: { type: "string", default: "1000" },
  },
});
const positive = (name: string, text: string | undefined) => {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new Error(`--${name} must be a positive integer, got ${text}`);
  return value;
};
const N = positive("pins", values.pins);
const POSTS = positive("posts", values.posts);
const LOOKUPS = positive("lookups", values.lookups);
const KEY = "bench-psa-key";
const ALL = "queued,pinning,pinned,failed";
const GOAL_P99_MS = 50;
const GOAL_PAGING_S = 60;

const log = (msg: string) => process.stderr.write(`${msg}\n`);
const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;
const p99 = (samples: readonly number[]) => percentile(samples, 99);
const p50 = (samples: readonly number[]) => percentile(samples, 50);

const schema = await createTestSchema("bpsa");
const db = connectDatabase({
  databaseUrl: schema.databaseUrl,
  maxConnections: 10,
  applicationName: "bench-psa",
});
let closeServer = async () => {};
let closeBackend = async () => {};
const heliaDir = await mkdtemp(join(tmpdir(), "bench-psa-"));
try {
  await migrateToLatest(db, schema.schema);
  const keyId = keyIdOf(KEY);
  const started = performance.now();
  // Oldest first, 1 ms apart, ending an hour ago: the API's own requests come after them.
  // In slices of 100,000 (each one statement inside PostgreSQL), so progress shows.
  const firstMs = Date.now() - 3_600_000 - N;
  for (let from = 1; from <= N; from += 100_000) {
    const to = Math.min(N, from + 99_999);
    await sql`insert into ${sql.id(schema.schema, "psa_request")}
        (requestid, key_id, cid, cid_given, name, origins, meta, created, size)
      select gen_random_uuid()::text, ${keyId}, 'bafkreisynthetic' || i, 'bafkreisynthetic' || i,
        'pin-' || i, '[]'::jsonb, jsonb_build_object('batch', (i % 10)::text),
        to_timestamp((${firstMs}::bigint + i) / 1000.0), 0
      from generate_series(${from}::int, ${to}::int) as i`.execute(db);
    log(`stored ${to} of ${N}`);
  }
  // Every request's CID pinned on the one backend, as the reconciler would leave them: the
  // status of each row is then read from a ledger of a million rows, as in production.
  const [backend] = parseBackends([`helia://${heliaDir}?offline=true`]);
  if (!backend) throw new Error("no backend");
  await backend.open();
  closeBackend = () => backend.close();
  for (let from = 1; from <= N; from += 200_000) {
    const to = Math.min(N, from + 199_999);
    await sql`insert into ${sql.id(schema.schema, "pin_ledger")} (backend_id, cid, status, owned)
      select ${backend.id}, 'bafkreisynthetic' || i, 'pinned', true
      from generate_series(${from}::int, ${to}::int) as i`.execute(db);
  }
  await sql`vacuum analyze ${sql.id(schema.schema, "pin_ledger")}`.execute(db);
  log(`ledger: ${N} pinned rows`);
  await sql`insert into ${sql.id(schema.schema, "psa_usage")} (key_id, requests, bytes)
    values (${keyId}, ${N}, 0)`.execute(db);
  await sql`vacuum analyze ${sql.id(schema.schema, "psa_request")}`.execute(db);
  log(`stored ${N} requests in ${round((performance.now() - started) / 1000)} s`);

  const config = loadConfig({
    QUASAR_RECONCILER_SCHEMA: schema.schema,
    QUASAR_API_KEYS: KEY,
    QUASAR_RATE_LIMIT: "0",
  });
  // No backend: the bench measures the API and the database (delegates are then empty).
  const app = createApp({
    config,
    backends: [backend],
    store: createApiStore({ db, reconcilerSchema: schema.schema, ttlMs: config.QUASAR_PIN_TTL }),
    logger: pino({ level: "silent" }),
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  closeServer = () => new Promise<void>((resolve) => server.close(() => resolve()));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/psa`;
  const headers = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
  const timed = async (
    url: string,
    init: RequestInit = {},
  ): Promise<{ ms: number; body: unknown }> => {
    const t = performance.now();
    const response = await fetch(url, { ...init, headers });
    const body = await response.json();
    const ms = performance.now() - t;
    if (response.status >= 300)
      throw new Error(`${url} answered ${response.status}: ${JSON.stringify(body)}`);
    return { ms, body };
  };

  const posted: string[] = [];
  const postMs: number[] = [];
  for (let i = 0; i < POSTS; i++) {
    const cid = CID.create(1, raw.code, await sha256.digest(randomBytes(32))).toString();
    posted.push(cid);
    const { ms } = await timed(`${base}/pins`, {
      method: "POST",
      body: JSON.stringify({ cid, name: `posted-${i}`, meta: { batch: "posted" } }),
    });
    postMs.push(ms);
  }
  log(`POST /pins p99 ${round(p99(postMs))} ms`);

  const pageMs: number[] = [];
  let seen = 0;
  let before: string | undefined;
  const pagingStarted = performance.now();
  for (;;) {
    const { ms, body } = await timed(
      `${base}/pins?limit=1000&status=${ALL}${before ? `&before=${before}` : ""}`,
    );
    pageMs.push(ms);
    const page = body as { count: number; results: { created: string }[] };
    seen += page.results.length;
    if (page.results.length === 0 || page.count === page.results.length) break;
    before = page.results[page.results.length - 1]?.created;
  }
  const pagingSeconds = (performance.now() - pagingStarted) / 1000;
  if (seen !== N + POSTS) throw new Error(`paging saw ${seen} requests, expected ${N + POSTS}`);
  log(
    `paged ${seen} requests in ${pageMs.length} pages, ${round(pagingSeconds)} s, p99 ${round(p99(pageMs))} ms`,
  );

  // The same paging without HTTP: the database's share of a page (the rest is rendering,
  // JSON and the socket), to tell a slow query from a busy machine.
  const store = createApiStore({
    db,
    reconcilerSchema: schema.schema,
    ttlMs: config.QUASAR_PIN_TTL,
  });
  const rule = { backendIds: [backend.id], required: 1 };
  const dbPageMs: number[] = [];
  let cursor: Date | undefined;
  for (;;) {
    const t = performance.now();
    const page = await store.psa.list(rule, {
      keyId,
      match: "exact",
      statuses: ["queued", "pinning", "pinned", "failed"],
      limit: 1000,
      ...(cursor ? { before: cursor } : {}),
    });
    dbPageMs.push(performance.now() - t);
    if (page.results.length === 0 || page.count === page.results.length) break;
    cursor = page.results[page.results.length - 1]?.created;
  }
  log(`database share of a page: p99 ${round(p99(dbPageMs))} ms`);

  // A status filter counts through the ledger (no shortcut): what `ipfs pin remote ls`
  // (status=pinned by default) and `service ls --stat` (limit=1&status=X) cost at this size.
  const pinnedPage = await timed(`${base}/pins?limit=1000`);
  const statMs: number[] = [];
  for (const status of ["queued", "pinning", "pinned", "failed"]) {
    statMs.push((await timed(`${base}/pins?limit=1&status=${status}`)).ms);
  }
  log(
    `first page of status=pinned ${round(pinnedPage.ms)} ms; service ls --stat (4 counts) ${round(statMs.reduce((a, b) => a + b, 0))} ms`,
  );

  const cidMs: number[] = [];
  for (let i = 0; i < LOOKUPS; i++) {
    const cid = posted[Math.floor(Math.random() * posted.length)] as string;
    const { ms, body } = await timed(`${base}/pins?cid=${cid}&status=${ALL}`);
    if ((body as { count: number }).count !== 1)
      throw new Error(`cid lookup of ${cid} did not find it`);
    cidMs.push(ms);
  }
  log(`GET /pins?cid= p99 ${round(p99(cidMs))} ms`);

  const result = {
    bench: "psa",
    pins: N,
    postP99Ms: round(p99(postMs)),
    postP50Ms: round(p50(postMs)),
    pageP99Ms: round(p99(pageMs)),
    pageP50Ms: round(p50(pageMs)),
    pages: pageMs.length,
    pagingSeconds: round(pagingSeconds),
    dbPageP99Ms: round(p99(dbPageMs)),
    loadAverage: round(loadavg()[0] ?? 0),
    pinnedFirstPageMs: round(pinnedPage.ms),
    statMs: round(statMs.reduce((a, b) => a + b, 0)),
    cidP99Ms: round(p99(cidMs)),
    cidP50Ms: round(p50(cidMs)),
    goals: { p99Ms: GOAL_P99_MS, pagingSeconds: GOAL_PAGING_S },
    met: {
      post: p99(postMs) <= GOAL_P99_MS,
      page: p99(pageMs) <= GOAL_P99_MS,
      paging: pagingSeconds <= GOAL_PAGING_S,
      cid: p99(cidMs) <= GOAL_P99_MS,
    },
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await closeServer();
  await closeBackend();
  await rm(heliaDir, { recursive: true, force: true });
  await db.destroy();
  await schema.drop();
}
