import { type Kysely, sql } from "kysely";
import type { Database } from "../database.js";
import { isPinStatus, type PinStatus } from "./pin-status.js";

/**
 * Pins that are not getting anywhere, for the dashboard's stuck view: waiting (queued) or in
 * flight (pinning) for longer than a threshold, and every failed pin. `schema` is
 * QUASAR_RECONCILER_SCHEMA.
 */
export type StuckPin = {
  backendId: string;
  cid: string;
  status: Extract<PinStatus, "queued" | "pinning" | "failed">;
  attempts: number;
  lastError: string | null;
  /** When this pin was first queued: the stuck view's age and order. */
  firstQueuedAt: Date;
  /** Seconds since firstQueuedAt, by the database clock. */
  ageSeconds: number;
  /** When the reconciler tries it next (failed pins: the slow retry). */
  nextAttemptAt: Date;
};

/** Stuck pins, oldest first, at most `limit`; `total` counts them all. */
export async function stuckPins(
  db: Kysely<Database>,
  schema: string,
  options: { olderThanMs: number; limit: number },
): Promise<{ pins: StuckPin[]; total: number }> {
  const stuck = sql<boolean>`(status = 'failed' or (status in ('queued', 'pinning')
    and first_queued_at < now() - make_interval(secs => ${options.olderThanMs / 1_000})))`;
  const [rows, count] = await Promise.all([
    db
      .withSchema(schema)
      .selectFrom("pin_ledger")
      .select([
        "backend_id",
        "cid",
        "status",
        "attempts",
        "last_error",
        "first_queued_at",
        "next_attempt_at",
        sql<string>`extract(epoch from now() - first_queued_at)::text`.as("age"),
      ])
      .where(stuck)
      .orderBy("first_queued_at")
      .orderBy("backend_id")
      .orderBy("cid")
      .limit(options.limit)
      .execute(),
    db
      .withSchema(schema)
      .selectFrom("pin_ledger")
      .select(sql<string>`count(*)::text`.as("count"))
      .where(stuck)
      .executeTakeFirstOrThrow(),
  ]);
  return {
    total: Number(count.count),
    pins: rows.map((row) => ({
      backendId: row.backend_id,
      cid: row.cid,
      // The filter admits only these three; anything else would be a broken check constraint.
      status:
        isPinStatus(row.status) && (row.status === "queued" || row.status === "pinning")
          ? row.status
          : "failed",
      attempts: row.attempts,
      lastError: row.last_error,
      firstQueuedAt: new Date(row.first_queued_at),
      ageSeconds: Math.max(0, Math.round(Number(row.age))),
      nextAttemptAt: new Date(row.next_attempt_at),
    })),
  };
}
