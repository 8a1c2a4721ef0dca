import type { Kysely } from "kysely";
import type { Database } from "../database.js";

/**
 * What an operator's "retry now" did to one (backend, cid):
 * - requeued: due now, with a fresh pin deadline (QUASAR_PIN_DEADLINE from now), so a failure
 *   of this attempt is retried with backoff rather than waiting for the slow retry;
 * - in_flight: a pin command is running; its outcome decides, nothing to do;
 * - not_stuck: pinned, being unpinned or not wanted: nothing to retry;
 * - absent: no such ledger row.
 */
export type RetryNowOutcome = "requeued" | "in_flight" | "not_stuck" | "absent";

/**
 * Makes a queued or failed pin due now. The status is left to the state machine: the next
 * claim dispatches it (failed → pinning is a legal transition), so this changes only when
 * it is tried and its deadline, and appends a `requeue` row to the reconcile log.
 */
export async function retryNow(
  db: Kysely<Database>,
  schema: string,
  options: { backendId: string; cid: string; pinDeadlineMs: number; reason: string },
): Promise<RetryNowOutcome> {
  return db
    .withSchema(schema)
    .transaction()
    .execute(async (trx) => {
      const row = await trx
        .selectFrom("pin_ledger")
        .select(["status"])
        .where("backend_id", "=", options.backendId)
        .where("cid", "=", options.cid)
        .forUpdate()
        .executeTakeFirst();
      if (!row) return "absent";
      if (row.status === "pinning") return "in_flight";
      if (row.status !== "queued" && row.status !== "failed") return "not_stuck";
      const now = new Date();
      await trx
        .updateTable("pin_ledger")
        .set({
          next_attempt_at: now,
          updated_at: now,
          deadline_at: new Date(now.getTime() + options.pinDeadlineMs),
        })
        .where("backend_id", "=", options.backendId)
        .where("cid", "=", options.cid)
        .execute();
      await trx
        .insertInto("reconcile_log")
        .values({
          backend_id: options.backendId,
          cid: options.cid,
          decision: "requeue",
          reason: options.reason,
          outcome: "ok",
          error: null,
        })
        .execute();
      return "requeued";
    });
}
