import { sql } from "kysely";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import { DESIRED_WAKEUP_CHANNEL } from "@/db/desired/wakeup-channel.js";
import { listenForDesiredWork, WAKEUPS_APPLICATION_NAME } from "@/db/desired/wakeups.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { startPgBouncer } from "@/test/harness/pgbouncer.js";
import { createTestSchema, type TestSchema } from "@/test/harness/postgres.js";
import { until } from "@/test/harness/until.js";

/**
 * Queued desired-step work announces itself (migration 0008), and the reconciler's listener
 * hears it, including after PostgreSQL drops its connection (pg_terminate_backend: a real
 * fault, on demand). Behind a real PgBouncer in transaction mode LISTEN succeeds and nothing
 * is ever heard; the listener's probe finds that out and says so.
 */

describe("desired-step wake-ups", () => {
  let schema: TestSchema;
  let other: TestSchema;
  let db: ReturnType<typeof connectDatabase>;
  beforeAll(async () => {
    schema = await createTestSchema("wake");
    other = await createTestSchema("wakeo");
    db = connectDatabase({ databaseUrl: schema.databaseUrl, maxConnections: 2 });
    await migrateToLatest(db, schema.schema);
    await migrateToLatest(db, other.schema);
  });
  afterAll(async () => {
    await db?.destroy();
    await schema?.drop();
    await other?.drop();
  });

  const queueCid = (into: TestSchema, cid: string) =>
    sql`insert into ${sql.id(into.schema, "desired_dirty_cid")} (cid) values (${cid})
      on conflict do nothing`.execute(db);

  it("announces each committed insert into either queue, with the schema as payload", async () => {
    const client = new pg.Client({ connectionString: schema.databaseUrl });
    await client.connect();
    const heard: string[] = [];
    client.on("notification", (message) => {
      if (message.channel === DESIRED_WAKEUP_CHANNEL) heard.push(message.payload ?? "");
    });
    try {
      await client.query(`listen ${DESIRED_WAKEUP_CHANNEL}`);
      await queueCid(schema, "bafkqaaa-one");
      await until(() => heard.length === 1);
      expect(heard).toEqual([schema.schema]);

      // Rolled back: nothing to wake for.
      await db
        .transaction()
        .execute(async (trx) => {
          await sql`insert into ${sql.id(schema.schema, "desired_dirty_cid")} (cid) values ('x')`.execute(
            trx,
          );
          throw new Error("roll back");
        })
        .catch(() => {});
      await sql`insert into ${sql.id(schema.schema, "desired_dirty_contract")} (chain_id, contract)
        values (1, '0xabc')`.execute(db);
      await queueCid(other, "bafkqaaa-other");
      await until(() => heard.length === 3);
      expect(heard).toEqual([schema.schema, schema.schema, other.schema]);
    } finally {
      await client.end();
    }
  });

  it("the listener wakes for its own schema only, and listens again after its connection is killed", async () => {
    let wakes = 0;
    const states: boolean[] = [];
    const wakeups = listenForDesiredWork({
      databaseUrl: schema.databaseUrl,
      reconcilerSchema: schema.schema,
      onWake: () => {
        wakes++;
      },
      onListening: (listening) => states.push(listening),
      logger: pino({ level: "silent" }),
    });
    try {
      await until(() => wakeups.listening());
      // Listening (re)starts with one wake: work queued meanwhile was announced to nobody.
      await until(() => wakes === 1);
      await queueCid(other, "bafkqaaa-not-mine");
      await queueCid(schema, "bafkqaaa-mine");
      await until(() => wakes === 2);

      const killed = await sql<{ n: number }>`
        select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
        where application_name = ${WAKEUPS_APPLICATION_NAME}`.execute(db);
      expect(killed.rows[0]?.n).toBeGreaterThanOrEqual(1);
      await until(() => !wakeups.listening());
      await until(() => wakeups.listening());
      await until(() => wakes === 3);
      await queueCid(schema, "bafkqaaa-mine-again");
      await until(() => wakes === 4);
      // The other schema's insert never counted.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(wakes).toBe(4);
    } finally {
      await wakeups.close();
    }
    expect(wakeups.listening()).toBe(false);
    expect(states).toEqual([true, false, true, false]);
    await queueCid(schema, "bafkqaaa-after-close");
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(wakes).toBe(4);
  });

  it("behind a transaction-pooling PgBouncer, counts as not listening and says why", async () => {
    const bouncer = await startPgBouncer();
    const lines: { msg?: string; err?: string }[] = [];
    const logger = pino(
      { level: "info" },
      { write: (line: string) => lines.push(JSON.parse(line)) },
    );
    let everListening = false;
    let wakes = 0;
    const wakeups = listenForDesiredWork({
      databaseUrl: bouncer.databaseUrl,
      reconcilerSchema: schema.schema,
      onWake: () => {
        wakes++;
      },
      onListening: (listening) => {
        everListening ||= listening;
      },
      logger,
      probeTimeoutMs: 1_000,
    });
    try {
      await until(() => lines.some((line) => line.msg?.startsWith("not listening") === true));
      const warning = lines.find((line) => line.msg?.startsWith("not listening") === true);
      expect(warning?.err).toMatch(/did not arrive within 1000 ms: a transaction-pooling proxy/);
      expect(wakeups.listening()).toBe(false);
      expect(everListening).toBe(false);
      // Work queued meanwhile wakes nobody: the steps follow the interval.
      await queueCid(schema, "bafkqaaa-behind-the-bouncer");
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(wakes).toBe(0);
    } finally {
      await wakeups.close();
      await bouncer.stop();
    }
  });

  it("probes a listening connection again and again, from a connection of its own", async () => {
    const client = new pg.Client({ connectionString: schema.databaseUrl });
    await client.connect();
    const probes: string[] = [];
    client.on("notification", (message) => {
      if (message.channel === DESIRED_WAKEUP_CHANNEL && message.payload?.startsWith("probe:"))
        probes.push(message.payload);
    });
    await client.query(`listen ${DESIRED_WAKEUP_CHANNEL}`);
    const wakeups = listenForDesiredWork({
      databaseUrl: schema.databaseUrl,
      reconcilerSchema: schema.schema,
      onWake: () => {},
      logger: pino({ level: "silent" }),
      probeEveryMs: 100,
    });
    try {
      await until(() => probes.length >= 4);
      expect(new Set(probes).size).toBe(probes.length);
      expect(wakeups.listening()).toBe(true);
    } finally {
      await wakeups.close();
      await client.end();
    }
  });
});
