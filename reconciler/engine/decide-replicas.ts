/**
 * How many backends must hold each desired CID, and whether the reconciler can keep that
 * promise now: it is ready only while at least that many backends are up. Pure.
 */

/**
 * Copies each desired CID must have: QUASAR_MIN_REPLICAS, where 0 means one on every
 * configured backend. Capped at the number of backends when each holds one copy; not capped
 * when a backend keeps several (`severalCopies`: an IPFS Cluster, whose peers each count). A
 * CID held in fewer copies than this is degraded.
 */
export function requiredReplicas(
  minReplicas: number,
  backendCount: number,
  severalCopies = false,
): number {
  if (minReplicas === 0) return backendCount;
  return severalCopies ? minReplicas : Math.min(minReplicas, backendCount);
}

/** One backend as its worker sees it. */
export type BackendHealth = {
  backendId: string;
  /** The masked label, safe for logs and answers. */
  label: string;
  up: boolean;
  /** Why it was last found down (masked: backend errors carry labels, never secrets). */
  lastError: string | null;
  /** When `up` last changed (or the worker started). */
  since: Date;
};

export type Readiness = {
  ready: boolean;
  up: number;
  required: number;
  /** Why not ready; undefined when ready. */
  reason?: string;
};

/** Ready while at least `required` backends are up: only then can every CID reach its replicas. */
export function decideReadiness(
  backends: readonly (Pick<BackendHealth, "label" | "up"> & { severalCopies?: boolean })[],
  required: number,
): Readiness {
  const up = backends.filter((b) => b.up).length;
  // A backend that keeps several copies (a cluster) can hold every required copy by itself.
  if (up >= required || backends.some((b) => b.up && b.severalCopies))
    return { ready: true, up, required };
  const down = backends.filter((b) => !b.up).map((b) => b.label);
  return {
    ready: false,
    up,
    required,
    reason: `${up} of ${backends.length} backends up, ${required} required; down: ${down.join(", ")}`,
  };
}
