import { type RawBuilder, sql } from "kysely";

/**
 * A Pinning Service API request's status, derived from the pin ledger of its CID across the
 * configured backends and the replicas required (QUASAR_MIN_REPLICAS): never stored, so it
 * cannot drift from what the reconciler did.
 *
 * - pinned:  at least `required` backends hold it pinned;
 * - failed:  so many backends gave up (the ledger's `failed`, only after QUASAR_PIN_DEADLINE)
 *            that `required` pins can no longer be reached;
 * - pinning: some backend pins it now or holds it already;
 * - queued:  otherwise (no ledger row yet), and whatever the ledger says while the reconciler
 *            has not taken the request (below).
 * A CID nobody can fetch therefore stays queued/pinning until its deadline, never failed early.
 *
 * Taken: the ledger speaks for a request only once the desired step has counted it. Until then
 * the CID's ledger rows may belong to a decision made without it: a request deleted and made
 * again (`ipfs pin remote rm` then `add`) would read `pinned` from the old pin while the
 * reconciler is about to unpin it, and a client that trusts `pinned` may drop its own copy.
 */
export const PSA_STATUSES = ["queued", "pinning", "pinned", "failed"] as const;
export type PsaStatus = (typeof PSA_STATUSES)[number];

/** Counts of the CID's ledger rows on the configured backends, by status. */
export type LedgerCounts = {
  pinned: number;
  pinning: number;
  failed: number;
  /** Whether the desired step has counted the request (`takenSql`). */
  taken: boolean;
};

/** What the derivation needs besides the counts. */
export type ReplicaRule = {
  /** Configured backend ids: rows of other (removed) backends do not count. */
  backendIds: readonly string[];
  /** Backends that must hold the CID (requiredReplicas of QUASAR_MIN_REPLICAS), ≥ 1. */
  required: number;
};

export function derivePsaStatus(counts: LedgerCounts, rule: ReplicaRule): PsaStatus {
  const required = Math.max(1, rule.required);
  if (!counts.taken) return "queued";
  if (counts.pinned >= required) return "pinned";
  if (rule.backendIds.length - counts.failed < required) return "failed";
  if (counts.pinning > 0 || counts.pinned > 0) return "pinning";
  return "queued";
}

/**
 * The same rule in SQL over the columns `p`, `g`, `f` (pinned, pinning, failed counts) of `s`
 * and `taken` (`takenSql`, or a column holding it): what the status filter of `GET /pins`
 * compares.
 */
export function psaStatusSql(rule: ReplicaRule, taken: RawBuilder<boolean>) {
  const required = Math.max(1, rule.required);
  return sql<PsaStatus>`(case when not ${taken} then 'queued'
    when s.p >= ${required} then 'pinned'
    when ${rule.backendIds.length} - s.f < ${required} then 'failed'
    when s.g > 0 or s.p > 0 then 'pinning' else 'queued' end)`;
}

/**
 * Whether the desired step has counted request `r` (a row of psa_request), over `q` from
 * `queueJoin`. Every write of a request queues its CID in desired_dirty_cid and the step
 * dequeues it in the transaction that evaluates it, so a CID out of the queue has been
 * evaluated with every request it has. A CID still queued has not; of its requests, those the
 * step saw at its last evaluation (desired_cid says `psa` and was written after the request)
 * are still counted: a new request of a pinned CID does not turn the others back to queued.
 * The engine applies a step's ledger work before it starts the next step, so once the CID
 * leaves the queue the ledger holds the outcome of every evaluation before it.
 */
export const takenSql = sql<boolean>`(q.cid is null
  or coalesce(q.is_psa and q.updated_at >= r.created, false))`;

/**
 * Joins to each request `r` its CID's entry in the desired step's queue, if any, as `q`, with
 * the step's last answer for it. The queue is short, so this is one small hash (or a probe per
 * row for a page), and desired_cid is read only for queued CIDs.
 */
export function queueJoin(schema: string) {
  return sql`left join (
      select q.cid, d.is_psa, d.updated_at from ${sql.id(schema, "desired_dirty_cid")} q
      left join ${sql.id(schema, "desired_cid")} d on d.cid = q.cid
    ) q on q.cid = r.cid`;
}
