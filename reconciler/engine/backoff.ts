/**
 * Exponential backoff with full jitter: attempt n waits a random time in
 * [base·2^(n-1) / 2, base·2^(n-1)], capped at `maxMs`. Jitter keeps a backend that returns
 * from being hit by every retry at once.
 */
export type BackoffPolicy = { baseMs: number; maxMs: number };

export function backoffDelayMs(
  attempt: number,
  policy: BackoffPolicy,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 40);
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
  return Math.round(ceiling / 2 + (ceiling / 2) * random());
}
