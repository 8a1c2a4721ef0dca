/**
 * The database reads behind the dashboard (api/ui), on a real Postgres schema: pins per
 * minute, recent errors per backend, upload usage per uploader, the reconcile log's order.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import { pinsPerMinute, recentErrors } from "@/db/ledger/activity.js";
import { readReconcileLog } from "@/db/ledger/reads.js";
import type { Decision, Outcome } from "@/db/ledger/tables.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { uploadsByUploader } from "@/db/uploads/usage.js";
import { createTestSchema, type TestSchema } from "@/test/harness/postgres.js";

let schema: TestSchema;
const db = connectDatabase({
  databaseUrl: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres",
});

beforeAll(async () => {
  schema = await createTestSchema("uidb");
  await migrateToLatest(db, schema.schema);
});
afterAll(async () => {
  await schema?.drop();
  await db.destroy();
});

const MINUTE = 60_000;

async function log(
  rows: { agoMs: number; backend?: string; cid?: string; decision: Decision; outcome: Outcome }[],
  now = Date.now(),
) {
  await db
    .withSchema(schema.schema)
    .insertInto("reconcile_log")
    .values(
      rows.map((row, i) => ({
        at: new Date(now - row.agoMs),
        backend_id: row.backend ?? "b1",
        cid: row.cid ?? `cid-${i}`,
        decision: row.decision,
        reason: "test",
        outcome: row.outcome,
        error: row.outcome === "error" ? `error ${i}` : null,
      })),
    )
    .execute();
}

describe("dashboard reads", () => {
  it("counts completed pins per minute over the last hour, zeros included", async () => {
    const inserted = Date.now();
    await log(
      [
        { agoMs: 0, decision: "pin", outcome: "ok" },
        { agoMs: 0, decision: "record_owned", outcome: "ok" },
        { agoMs: 5 * MINUTE, decision: "copy", outcome: "ok" },
        { agoMs: 5 * MINUTE, decision: "adopt", outcome: "ok" },
        { agoMs: 5 * MINUTE, decision: "pin", outcome: "ok" },
        // Not a completed pin: a start, an error, an unpin; and one older than the hour.
        { agoMs: 0, decision: "pin", outcome: "started" },
        { agoMs: 0, decision: "pin", outcome: "error" },
        { agoMs: 0, decision: "unpin", outcome: "ok" },
        { agoMs: 2 * 60 * MINUTE, decision: "pin", outcome: "ok" },
      ],
      inserted,
    );
    const minutes = await pinsPerMinute(db, schema.schema, 60);
    expect(minutes).toHaveLength(60);
    // By the minute each row fell in (a minute may turn between the insert and the read).
    const minuteOf = (agoMs: number) => Math.floor((inserted - agoMs) / MINUTE) * MINUTE;
    const counted = new Map(
      minutes.filter((m) => m.pins > 0).map((m) => [m.minute.getTime(), m.pins]),
    );
    expect(counted).toEqual(
      new Map(
        minuteOf(0) === minuteOf(5 * MINUTE)
          ? [[minuteOf(0), 5]]
          : [
              [minuteOf(5 * MINUTE), 3],
              [minuteOf(0), 2],
            ],
      ),
    );
    // One row per minute, in order.
    const steps = minutes
      .slice(1)
      .map((m, i) => m.minute.getTime() - (minutes[i] as { minute: Date }).minute.getTime());
    expect(new Set(steps)).toEqual(new Set([MINUTE]));
  });

  it("keeps the last few errors of each backend, newest first", async () => {
    await log(
      Array.from({ length: 8 }, (_, i) => ({
        agoMs: (8 - i) * 1_000,
        backend: "b2",
        cid: `b2-${i}`,
        decision: "pin" as const,
        outcome: "error" as const,
      })),
    );
    const errors = await recentErrors(db, schema.schema, 3);
    const b2 = errors.filter((error) => error.backendId === "b2");
    expect(b2.map((error) => error.cid)).toEqual(["b2-7", "b2-6", "b2-5"]);
    expect(errors.filter((error) => error.backendId === "b1")).toHaveLength(1);
  });

  it("reads the reconcile log newest first by id, past 100 rows", async () => {
    await log(
      Array.from({ length: 120 }, () => ({
        agoMs: 0,
        cid: "many",
        decision: "queue" as const,
        outcome: "ok" as const,
      })),
    );
    const entries = await readReconcileLog(db, schema.schema, { cid: "many", limit: 200 });
    const ids = entries.map((entry) => BigInt(entry.id));
    expect(ids).toEqual([...ids].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)));
  });

  it("sums uploads per uploader, most uploads first", async () => {
    const now = Date.now();
    const upload = (uploader: string, size: number, expiresInMs: number, cid: string) => ({
      cid,
      created_at: new Date(now - 1_000),
      expires_at: new Date(now + expiresInMs),
      size,
      uploader,
      backend_id: "b1",
    });
    await db
      .withSchema(schema.schema)
      .insertInto("optimistic_pin")
      .values([
        upload("key-a", 100, MINUTE, "c1"),
        upload("key-a", 50, -MINUTE, "c2"),
        upload("anonymous", 7, MINUTE, "c3"),
      ])
      .execute();
    const usage = await uploadsByUploader(db, schema.schema);
    expect(
      usage.map(({ uploader, uploads, bytes, live }) => ({ uploader, uploads, bytes, live })),
    ).toEqual([
      { uploader: "key-a", uploads: 2, bytes: 150n, live: 1 },
      { uploader: "anonymous", uploads: 1, bytes: 7n, live: 1 },
    ]);
  });
});
