/** How many backends must hold each desired CID. Pure. */

/**
 * Backends that must hold each desired CID: QUASAR_MIN_REPLICAS, where 0 means every
 * configured backend, and never more than there are backends. A CID pinned on fewer
 * backends than this is degraded.
 */
export function requiredReplicas(minReplicas: number, backendCount: number): number {
  return minReplicas === 0 ? backendCount : Math.min(minReplicas, backendCount);
}
