/**
 * db/connect.ts against sessions ended at the worst moment, on the real server. The fault
 * suite's API died once (CI, stop 16) when PostgreSQL sessions were terminated under load:
 * a new connection's "ready" and its "terminated" reached pg in one chunk, so the client
 * emitted 'error' after the pool had handed it out and before anyone listened: an uncaught
 * exception. The proxy here delivers exactly that chunk, every time.
 */
import { sql } from "kysely";
import pg from "pg";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { connectDatabase, isDatabaseUnavailable } from "@/db/connect.js";
import { type FreezableProxy, startProxy } from "./harness/freezable-proxy.js";
import { TEST_DATABASE_URL } from "./harness/postgres.js";

let proxy: FreezableProxy;
let admin: pg.Client;
let viaProxy: string;
const uncaught: unknown[] = [];
const onUncaught = (error: unknown) => {
  uncaught.push(error);
};

beforeAll(async () => {
  const target = new URL(TEST_DATABASE_URL);
  proxy = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
  const url = new URL(TEST_DATABASE_URL);
  url.hostname = "127.0.0.1";
  url.port = String(proxy.port);
  viaProxy = url.toString();
  admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  // Recorded, so the test can name the failure instead of the whole run dying on it.
  process.prependListener("uncaughtException", onUncaught);
});

afterAll(async () => {
  process.off("uncaughtException", onUncaught);
  await admin?.end();
  await proxy?.close();
});

afterEach(() => {
  uncaught.length = 0;
});

const terminate = async (pid: number) => {
  await admin.query("select pg_terminate_backend($1)", [pid]);
};

it("a session ended as it connects fails that query as unavailable, crashes nothing, and the pool goes on", async () => {
  const db = connectDatabase({ databaseUrl: viaProxy, maxConnections: 2 });
  try {
    const delivered = proxy.terminateNextAtReady(terminate);
    const first = await sql`select 1 as one`.execute(db).then(
      () => undefined,
      (error: unknown) => error,
    );
    await delivered;
    // Let the socket's end and any late 'error' land before looking.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(uncaught.map(String)).toEqual([]);
    // The first query ran on the dead session: refused as "database unavailable" (a 503 in
    // the API, a retried round in the reconciler), never a statement error.
    if (first !== undefined) expect(isDatabaseUnavailable(first), String(first)).toBe(true);
    // The dead client was thrown away: the next queries get live ones.
    for (let round = 0; round < 3; round++) {
      const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
      expect(rows[0]?.one).toBe(1);
    }
  } finally {
    await db.destroy();
  }
});

it("the same fault on a pool whose clients are all busy: the waiting query gets the fresh client", async () => {
  const db = connectDatabase({ databaseUrl: viaProxy, maxConnections: 3 });
  try {
    // Two long statements hold two clients; the third query needs a new connection.
    const busy = [sql`select pg_sleep(0.5)`.execute(db), sql`select pg_sleep(0.5)`.execute(db)];
    await new Promise((resolve) => setTimeout(resolve, 100));
    const delivered = proxy.terminateNextAtReady(terminate);
    const third = await sql`select 1 as one`.execute(db).then(
      () => undefined,
      (error: unknown) => error,
    );
    await delivered;
    await Promise.all(busy);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(uncaught.map(String)).toEqual([]);
    if (third !== undefined) expect(isDatabaseUnavailable(third), String(third)).toBe(true);
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
    expect(rows[0]?.one).toBe(1);
  } finally {
    await db.destroy();
  }
});
