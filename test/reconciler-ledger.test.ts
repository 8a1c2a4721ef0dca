import type { Kysely } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import {
  applyChanges,
  getLedgerRow,
  type LedgerTables,
  recordOwnedPin,
} from "@/db/ledger/ledger.js";
import { claimWork } from "@/db/ledger/queue.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

const CID_A = "bafkreia4yzf6fypbkxq6fbv2zb6aqwhgxsqbv4p6g6w2x3orhnmmsgdmwm";
const CID_B = "bafkreib4yzf6fypbkxq6fbv2zb6aqwhgxsqbv4p6g6w2x3orhnmmsgdmwm";
const OPTS = { pinDeadlineMs: 60_000 };

describe("pin ledger on Postgres", () => {
  let schema: TestSchema;
  let root: Kysely<LedgerTables>;
  let db: Kysely<LedgerTables>;

  beforeAll(async () => {
    schema = await createTestSchema("ledger");
    root = connectDatabase({ databaseUrl: schema.databaseUrl, maxConnections: 6 });
    db = root.withSchema(schema.schema);
    // Every migration: later ones add ledger columns the writes fill (0006: copies).
    await migrateToLatest(root, schema.schema);
  });
  afterAll(async () => {
    await root?.destroy();
    await schema?.drop();
  });

  it("queues a wanted CID with a deadline, dispatches and completes it, logging each decision", async () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const [queued] = await db.transaction().execute((trx) =>
      applyChanges(
        trx,
        [
          {
            backendId: "b1",
            cid: CID_A,
            event: "want",
            log: { decision: "queue", reason: "desired", outcome: "ok" },
          },
        ],
        { now, ...OPTS },
      ),
    );
    expect(queued).toMatchObject({ applied: true, from: "absent", to: "queued" });
    const row = await getLedgerRow(db, "b1", CID_A);
    expect(row?.status).toBe("queued");
    expect(row?.owned).toBe(false);
    expect(row?.deadline_at?.getTime()).toBe(now.getTime() + 60_000);

    const later = new Date(now.getTime() + 1_000);
    const [dispatched] = await db.transaction().execute((trx) =>
      applyChanges(
        trx,
        [
          {
            backendId: "b1",
            cid: CID_A,
            event: "dispatch_pin",
            expect: "queued",
            set: { owned: true },
          },
        ],
        {
          now: later,
          ...OPTS,
        },
      ),
    );
    expect(dispatched).toMatchObject({ applied: true, to: "pinning" });

    // A completion that expects a status the row no longer has is stale and changes nothing.
    const [stale] = await db
      .transaction()
      .execute((trx) =>
        applyChanges(
          trx,
          [{ backendId: "b1", cid: CID_A, event: "unpin_ok", expect: "unpinning" }],
          { now: later, ...OPTS },
        ),
      );
    expect(stale).toEqual({ applied: false, why: "stale", from: "pinning" });

    const [illegal, ok] = await db.transaction().execute((trx) =>
      applyChanges(
        trx,
        [
          { backendId: "b1", cid: CID_A, event: "dispatch_unpin" },
          {
            backendId: "b1",
            cid: CID_A,
            event: "pin_ok",
            expect: "pinning",
            log: { decision: "pin", reason: "desired", outcome: "ok" },
          },
        ],
        { now: later, ...OPTS },
      ),
    );
    expect(illegal).toEqual({ applied: false, why: "illegal", from: "pinning" });
    expect(ok).toMatchObject({ applied: true, from: "pinning", to: "pinned" });
    const pinned = await getLedgerRow(db, "b1", CID_A);
    expect(pinned).toMatchObject({ status: "pinned", owned: true, attempts: 0, last_error: null });

    const log = await db
      .selectFrom("reconcile_log")
      .selectAll()
      .where("cid", "=", CID_A)
      .orderBy("id")
      .execute();
    expect(log.map((l) => [l.decision, l.outcome])).toEqual([
      ["queue", "ok"],
      ["pin", "ok"],
    ]);
  });

  it("claims new work before retries, and retries only when due; records intent first", async () => {
    const now = new Date("2026-02-01T00:00:00Z");
    const cid = (i: number) =>
      `bafkreig${String(i).padStart(3, "0")}zf6fypbkxq6fbv2zb6aqwhgxsqbv4p6g6w2x3orhnmmsgd`;
    const opts = { now, ...OPTS };
    // Three retries due long ago, one retry not yet due, then two fresh pins queued later.
    await db.transaction().execute(async (trx) => {
      for (const i of [1, 2, 3, 4]) {
        await applyChanges(trx, [{ backendId: "q", cid: cid(i), event: "want" }], {
          ...opts,
          now: new Date(now.getTime() - 60_000),
        });
        await applyChanges(trx, [{ backendId: "q", cid: cid(i), event: "dispatch_pin" }], opts);
        await applyChanges(
          trx,
          [
            {
              backendId: "q",
              cid: cid(i),
              event: "pin_error",
              set: {
                attempts: 1,
                next_attempt_at: new Date(now.getTime() + (i === 4 ? 60_000 : -30_000)),
              },
            },
          ],
          opts,
        );
      }
      await applyChanges(
        trx,
        [5, 6].map((i) => ({ backendId: "q", cid: cid(i), event: "want" as const })),
        opts,
      );
    });
    const first = await claimWork(db, {
      backendId: "q",
      limit: 3,
      now,
      exclude: [],
      pinDeadlineMs: 60_000,
    });
    expect(first.map((r) => [r.cid, r.queue, r.status])).toEqual([
      [cid(5), "new", "pinning"],
      [cid(6), "new", "pinning"],
      [expect.any(String), "retry", "pinning"],
    ]);
    const rest = await claimWork(db, {
      backendId: "q",
      limit: 10,
      now,
      exclude: [cid(2)],
      pinDeadlineMs: 60_000,
    });
    // cid 2 has a command in flight (excluded), cid 4 is not due yet.
    expect(rest.map((r) => r.cid).sort()).toEqual(
      [cid(1), cid(2), cid(3)].filter((c) => c !== cid(2) && !first.some((r) => r.cid === c)),
    );
    const started = await db
      .selectFrom("reconcile_log")
      .select("cid")
      .where("backend_id", "=", "q")
      .where("outcome", "=", "started")
      .execute();
    expect(started).toHaveLength(first.length + rest.length);
  });

  it("rejects unknown statuses at the database", async () => {
    await expect(
      db
        .insertInto("pin_ledger")
        // @ts-expect-error: the check constraint is what is being tested
        .values({ backend_id: "b1", cid: CID_B, status: "pin_error", owned: false })
        .execute(),
    ).rejects.toThrow(/check constraint/);
  });

  it("recordOwnedPin marks an upload as owned and pinned inside the caller's transaction", async () => {
    await db.transaction().execute(async (trx) => {
      await recordOwnedPin(trx, { backendId: "b2", cid: CID_B });
    });
    expect(await getLedgerRow(db, "b2", CID_B)).toMatchObject({ status: "pinned", owned: true });

    // Rolled back with the caller's transaction: nothing is left behind.
    await expect(
      db.transaction().execute(async (trx) => {
        await recordOwnedPin(trx, { backendId: "b3", cid: CID_B });
        throw new Error("upload failed later in the transaction");
      }),
    ).rejects.toThrow(/upload failed/);
    expect(await getLedgerRow(db, "b3", CID_B)).toBeUndefined();

    // Through an unscoped handle, naming the schema.
    await root.transaction().execute(async (trx) => {
      await recordOwnedPin(trx, { backendId: "b4", cid: CID_B, schema: schema.schema });
    });
    expect(await getLedgerRow(db, "b4", CID_B)).toMatchObject({ status: "pinned", owned: true });
  });

  it("recordOwnedPin over a queued row keeps one row and turns it owned", async () => {
    const now = new Date();
    await db
      .transaction()
      .execute((trx) =>
        applyChanges(trx, [{ backendId: "b5", cid: CID_A, event: "want" }], { now, ...OPTS }),
      );
    await db.transaction().execute((trx) => recordOwnedPin(trx, { backendId: "b5", cid: CID_A }));
    expect(await getLedgerRow(db, "b5", CID_A)).toMatchObject({ status: "pinned", owned: true });
  });

  it("never loses the API's ownership when the engine creates the same row concurrently", async () => {
    for (let i = 0; i < 10; i++) {
      const backendId = `race${i}`;
      await Promise.all([
        db.transaction().execute((trx) =>
          applyChanges(trx, [{ backendId, cid: CID_A, event: "want" }], {
            now: new Date(),
            ...OPTS,
          }),
        ),
        db.transaction().execute((trx) => recordOwnedPin(trx, { backendId, cid: CID_A })),
      ]);
      const row = await getLedgerRow(db, backendId, CID_A);
      // Whichever ran first, ownership survives; want on pinned keeps pinned.
      expect(row).toMatchObject({ status: "pinned", owned: true });
    }
  });
});
