/**
 * How many backends must hold each desired CID, and whether the reconciler can keep that
 * promise now: it is ready only while at least that many backends are up. Pure.
 */

/**
 * Backends that must hold each desired CID: QUASAR_MIN_REPLICAS, where 0 means every
 * configured backend, and never more than there are backends. A CID pinned on fewer
 * backends than this is degraded.
 */
export function requiredReplicas(minReplicas: number, backendCount: number): number {
  return minReplicas === 0 ? backendCount : Math.min(minReplicas, backendCount);
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
  backends: readonly Pick<BackendHealth, "label" | "up">[],
  required: number,
): Readiness {
  const up = backends.filter((b) => b.up).length;
  if (up >= required) return { ready: true, up, required };
  const down = backends.filter((b) => !b.up).map((b) => b.label);
  return {
    ready: false,
    up,
    required,
    reason: `${up} of ${backends.length} backends up, ${required} required; down: ${down.join(", ")}`,
  };
}
