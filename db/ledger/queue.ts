import { type Kysely, sql, type Transaction } from "kysely";
import type { Database } from "../database.js";
import { applyChanges, type LedgerChange, type LedgerRow } from "./ledger.js";

/**
 * The two work queues of one backend, both kept in pin_ledger (so they survive a crash):
 * new work (never attempted) first, then retries and due slow retries of failed pins, so
 * failing content never starves new work. Claiming records the intent (pinning/unpinning +
 * a "started" log row) in the same transaction, before any command is sent.
 */
export type ClaimOptions = {
  backendId: string;
  limit: number;
  now: Date;
  /** CIDs with a command in flight on this backend: never two commands on one CID at once. */
  exclude: readonly string[];
  pinDeadlineMs: number;
};

export type ClaimedRow = LedgerRow & { queue: "new" | "retry" };

export async function claimWork(
  db: Kysely<Database>,
  options: ClaimOptions,
): Promise<ClaimedRow[]> {
  const { backendId, limit, now, exclude } = options;
  if (limit <= 0) return [];
  return db.transaction().execute(async (trx) => {
    await relaxCommit(trx);
    const fresh = await trx
      .selectFrom("pin_ledger")
      .selectAll()
      .where("backend_id", "=", backendId)
      .where(sql<boolean>`status in ('queued','unpin_queued') and attempts = 0`)
      .where("next_attempt_at", "<=", now)
      .where(sql<boolean>`cid <> all(${exclude}::text[])`)
      .orderBy("next_attempt_at")
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute();
    let retries: LedgerRow[] = [];
    if (fresh.length < limit) {
      retries = await trx
        .selectFrom("pin_ledger")
        .selectAll()
        .where("backend_id", "=", backendId)
        .where(
          sql<boolean>`((status in ('queued','unpin_queued') and attempts > 0) or status = 'failed')`,
        )
        .where("next_attempt_at", "<=", now)
        .where(sql<boolean>`cid <> all(${exclude}::text[])`)
        .orderBy("next_attempt_at")
        .limit(limit - fresh.length)
        .forUpdate()
        .skipLocked()
        .execute();
    }
    const rows = [
      ...fresh.map((r) => ({ ...r, queue: "new" as const })),
      ...retries.map((r) => ({ ...r, queue: "retry" as const })),
    ];
    if (rows.length === 0) return [];
    const changes: LedgerChange[] = rows.map((row) => {
      if (row.status === "unpin_queued" && !row.owned) {
        // Quasar never created this pin (adopted while the unpin waited): never unpin it.
        return {
          backendId,
          cid: row.cid,
          event: "release",
          expect: row.status,
          log: {
            decision: "skip_foreign",
            reason: "not created by Quasar: left pinned",
            outcome: "ok",
          },
        };
      }
      const pin = row.status !== "unpin_queued";
      return {
        backendId,
        cid: row.cid,
        event: pin ? "dispatch_pin" : "dispatch_unpin",
        expect: row.status,
        log: {
          decision: pin ? "pin" : "unpin",
          reason:
            row.queue === "new"
              ? "queued"
              : `retry ${row.attempts + 1}${row.status === "failed" ? " of a failed pin" : ""}`,
          outcome: "started",
        },
      };
    });
    const results = await applyChanges(trx, changes, { now, pinDeadlineMs: options.pinDeadlineMs });
    const claimed: ClaimedRow[] = [];
    results.forEach((result, i) => {
      if (result.applied && (result.to === "pinning" || result.to === "unpinning"))
        claimed.push({ ...result.row, queue: (rows[i] as ClaimedRow).queue });
    });
    return claimed;
  });
}

/**
 * Commits without waiting for the WAL flush. Safe for the engine's own bookkeeping because
 * every command is idempotent: if Postgres itself crashes and loses the last few hundred
 * milliseconds of commits, a claim reverts to queued (claimed again) and an outcome reverts
 * to pinning (re-driven at start). A reconciler crash loses nothing: Postgres has the commit.
 */
export async function relaxCommit(trx: Transaction<Database>): Promise<void> {
  await sql`set local synchronous_commit to off`.execute(trx);
}

/** Due and waiting rows per queue, for the queue-depth metric. */
export async function queueDepths(
  db: Kysely<Database>,
): Promise<{ backendId: string; queue: "new" | "retry" | "failed"; count: number }[]> {
  const rows = await db
    .selectFrom("pin_ledger")
    .select([
      "backend_id",
      sql<string>`case when status = 'failed' then 'failed' when attempts = 0 then 'new' else 'retry' end`.as(
        "queue",
      ),
      sql<number>`count(*)::int`.as("count"),
    ])
    .where("status", "in", ["queued", "unpin_queued", "failed"])
    .groupBy(["backend_id", "queue"])
    .execute();
  return rows.map((r) => ({
    backendId: r.backend_id,
    queue: r.queue as "new" | "retry" | "failed",
    count: r.count,
  }));
}
