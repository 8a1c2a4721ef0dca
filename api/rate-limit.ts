/**
 * A fixed-window rate limiter in memory, per client key (an API key id or the client
 * address). Memory is bounded: at most `maxClients` windows are tracked; when full, expired
 * windows are dropped first, then the oldest. Evicting a live window only ever forgives a
 * client, it never blocks one wrongly.
 */

/** The verdict for one request. */
export type RateDecision =
  | { allowed: true; remaining: number; resetSeconds: number }
  | { allowed: false; retryAfterSeconds: number };

export type RateLimiter = {
  /** Counts one request from `client` at `nowMs` and says whether it may proceed. */
  take(client: string, nowMs: number): RateDecision;
  /** Windows currently tracked (for tests and metrics). */
  readonly size: number;
};

export type RateLimiterOptions = {
  /** Requests allowed per window; 0 disables the limit. */
  limit: number;
  windowMs: number;
  /** Most clients tracked at once. */
  maxClients?: number;
};

const DEFAULT_MAX_CLIENTS = 100_000;

export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { limit, windowMs } = options;
  const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  if (!Number.isInteger(limit) || limit < 0)
    throw new RangeError("limit must be a whole number ≥ 0");
  if (!(windowMs > 0)) throw new RangeError("windowMs must be positive");
  // Map keeps insertion order, so the first entries are the oldest windows.
  const windows = new Map<string, { startMs: number; count: number }>();

  const evict = (nowMs: number) => {
    for (const [client, window] of windows) {
      if (nowMs - window.startMs >= windowMs) windows.delete(client);
    }
    while (windows.size >= maxClients) {
      const oldest = windows.keys().next();
      if (oldest.done) break;
      windows.delete(oldest.value);
    }
  };

  return {
    get size() {
      return windows.size;
    },
    take(client, nowMs) {
      if (limit === 0)
        return { allowed: true, remaining: Number.MAX_SAFE_INTEGER, resetSeconds: 0 };
      let window = windows.get(client);
      if (window === undefined || nowMs - window.startMs >= windowMs) {
        if (window !== undefined) windows.delete(client);
        else if (windows.size >= maxClients) evict(nowMs);
        window = { startMs: nowMs, count: 0 };
        windows.set(client, window);
      }
      const resetSeconds = Math.max(1, Math.ceil((window.startMs + windowMs - nowMs) / 1000));
      if (window.count >= limit) return { allowed: false, retryAfterSeconds: resetSeconds };
      window.count += 1;
      return { allowed: true, remaining: limit - window.count, resetSeconds };
    },
  };
}
