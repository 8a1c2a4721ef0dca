import { sql } from "kysely";

/**
 * A Pinning Service API request's status, derived from the pin ledger of its CID across the
 * configured backends and the replicas required (QUASAR_MIN_REPLICAS): never stored, so it
 * cannot drift from what the reconciler did.
 *
 * - pinned:  at least `required` backends hold it pinned;
 * - failed:  so many backends gave up (the ledger's `failed`, only after QUASAR_PIN_DEADLINE)
 *            that `required` pins can no longer be reached;
 * - pinning: some backend pins it now or holds it already;
 * - queued:  otherwise (no ledger row yet: the reconciler has not taken it).
 * A CID nobody can fetch therefore stays queued/pinning until its deadline, never failed early.
 */
export const PSA_STATUSES = ["queued", "pinning", "pinned", "failed"] as const;
export type PsaStatus = (typeof PSA_STATUSES)[number];

/** Counts of the CID's ledger rows on the configured backends, by status. */
export type LedgerCounts = { pinned: number; pinning: number; failed: number };

/** What the derivation needs besides the counts. */
export type ReplicaRule = {
  /** Configured backend ids: rows of other (removed) backends do not count. */
  backendIds: readonly string[];
  /** Backends that must hold the CID (requiredReplicas of QUASAR_MIN_REPLICAS), ≥ 1. */
  required: number;
};

export function derivePsaStatus(counts: LedgerCounts, rule: ReplicaRule): PsaStatus {
  const required = Math.max(1, rule.required);
  if (counts.pinned >= required) return "pinned";
  if (rule.backendIds.length - counts.failed < required) return "failed";
  if (counts.pinning > 0 || counts.pinned > 0) return "pinning";
  return "queued";
}

/**
 * The same rule in SQL over the columns `p`, `g` and `f` (pinned, pinning, failed counts) of
 * a lateral join: what the status filter of `GET /pins` compares.
 */
export function psaStatusSql(rule: ReplicaRule) {
  const required = Math.max(1, rule.required);
  return sql<PsaStatus>`(case when s.p >= ${required} then 'pinned'
    when ${rule.backendIds.length} - s.f < ${required} then 'failed'
    when s.g > 0 or s.p > 0 then 'pinning' else 'queued' end)`;
}
