/**
 * How long the engine's loop pauses before its next step. Normally one reconcile interval;
 * when a time-based change (a TTL expiry) falls due sooner, until it, so an expired upload is
 * unpinned when it expires rather than up to one interval later. Never less than
 * `minimumMs`: a burst of expiries a few milliseconds apart is taken in one step, and a
 * change that stays due (it should not) cannot spin the loop.
 */
export const MINIMUM_WAIT_MS = 250;

export function decideNextStepDelay(params: {
  nowMs: number;
  /** The desired set's earliest scheduled change; null when none. */
  nextChangeAt: Date | null;
  intervalMs: number;
  minimumMs?: number;
}): number {
  const { nowMs, nextChangeAt, intervalMs } = params;
  const minimum = Math.min(params.minimumMs ?? MINIMUM_WAIT_MS, intervalMs);
  if (nextChangeAt === null) return intervalMs;
  const untilDue = nextChangeAt.getTime() - nowMs;
  return Math.max(minimum, Math.min(intervalMs, untilDue));
}
