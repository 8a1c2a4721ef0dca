import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase, isDatabaseUnavailable } from "@/db/connect.js";
import { createTestSchema, type TestSchema } from "../harness/postgres.js";

/**
 * A session killed on the server (pg_terminate_backend, a PostgreSQL restart, a failover)
 * while Quasar holds its connection must fail that work, never the process: pg emits the
 * client's 'error' event with no listener while a client is checked out, which Node turns
 * into an uncaught exception (vitest reports it as an unhandled error, failing this file).
 */
let schema: TestSchema;
let db: ReturnType<typeof connectDatabase>;
let admin: ReturnType<typeof connectDatabase>;

beforeAll(async () => {
  schema = await createTestSchema("conn");
  db = connectDatabase({ databaseUrl: schema.databaseUrl, applicationName: "quasar-conn-test" });
  admin = connectDatabase({ databaseUrl: schema.databaseUrl, applicationName: "conn-admin" });
});

afterAll(async () => {
  await db?.destroy();
  await admin?.destroy();
  await schema?.drop();
});

async function terminate(pid: number): Promise<void> {
  await sql`select pg_terminate_backend(${pid})`.execute(admin);
}

describe("connectDatabase", () => {
  it("survives a session killed while its connection is held between queries", async () => {
    const failure = await db
      .connection()
      .execute(async (conn) => {
        const { rows } = await sql<{ pid: number }>`select pg_backend_pid() as pid`.execute(conn);
        await terminate(Number(rows[0]?.pid));
        // The server's goodbye arrives while the client is checked out and idle.
        await new Promise((resolve) => setTimeout(resolve, 300));
        await sql`select 1`.execute(conn);
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(isDatabaseUnavailable(failure)).toBe(true);
    // The broken client was discarded, not pooled: the next query gets a fresh session.
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
    expect(rows[0]?.one).toBe(1);
  });

  it("fails the query in flight when its session is killed, and keeps serving", async () => {
    // The handler is attached at once: the failure can arrive before terminate() returns.
    const running = sql`select pg_sleep(5)`.execute(db).then(
      () => undefined,
      (error: unknown) => error,
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    const { rows } = await sql<{ pid: number }>`
      select pid from pg_stat_activity
      where application_name = 'quasar-conn-test' and query like 'select pg_sleep%'`.execute(admin);
    expect(rows.length).toBe(1);
    await terminate(Number(rows[0]?.pid));
    const failure = await running;
    expect(isDatabaseUnavailable(failure)).toBe(true);
    const { rows: after } = await sql<{ one: number }>`select 1 as one`.execute(db);
    expect(after[0]?.one).toBe(1);
  });
});
