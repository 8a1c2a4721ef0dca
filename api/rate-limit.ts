import { CompiledQuery, type Kysely } from "kysely";
import type { Logger } from "pino";
import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from "rate-limiter-flexible";
import { describeError } from "@/core/errors.js";

/**
 * Rate limits per client key (an API key id or the client address), fixed windows of
 * QUASAR_RATE_LIMIT requests per QUASAR_RATE_LIMIT_WINDOW.
 *
 * - createSharedRateLimiter: what the API process runs. rate-limiter-flexible keeps the
 *   counters in PostgreSQL (table api_rate_limit of the reconciler schema, migration 0004),
 *   so one limit holds across every API process and across restarts.
 * - createRateLimiter: counters in this process's memory, for an app built without a shared
 *   store (createApp's default: tests that move the clock, embedding).
 */

/** The verdict for one request. */
export type RateDecision =
  | { allowed: true; remaining: number; resetSeconds: number }
  | { allowed: false; retryAfterSeconds: number };

export type RateLimiter = {
  /**
   * Counts one request from `client` and says whether it may proceed. `nowMs` is the app's
   * clock; the shared limiter uses the process clock instead (the library reads Date.now).
   * Never throws for a store failure.
   */
  take(client: string, nowMs: number): RateDecision | Promise<RateDecision>;
};

/** The in-memory limiter, whose window count tests can read. */
export type MemoryRateLimiter = {
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

const UNLIMITED: RateDecision = {
  allowed: true,
  remaining: Number.MAX_SAFE_INTEGER,
  resetSeconds: 0,
};

function checkLimits(limit: number, windowMs: number): void {
  if (!Number.isInteger(limit) || limit < 0)
    throw new RangeError("limit must be a whole number ≥ 0");
  if (!(windowMs > 0)) throw new RangeError("windowMs must be positive");
}

export type SharedRateLimiterOptions = {
  /** Requests allowed per window; 0 disables the limit (and the store is never queried). */
  limit: number;
  windowMs: number;
  /** The API's database; the limiter borrows its pool, one query per request. */
  // biome-ignore lint/suspicious/noExplicitAny: the limiter's SQL is the library's, on its own table
  db: Kysely<any>;
  /** The reconciler schema, which holds api_rate_limit. */
  schema: string;
  logger: Logger;
  /** How long a store query may take before this request is decided in memory. */
  storeTimeoutMs?: number;
};

/** A stuck pool must not hold every request: past this, the insurance limiter decides. */
const DEFAULT_STORE_TIMEOUT_MS = 2_000;

/**
 * The limiter shared by every API process, on rate-limiter-flexible's RateLimiterPostgres.
 *
 * When the database fails or does not answer within `storeTimeoutMs`, the request is decided
 * by an in-memory insurance limiter with the same limit (the library's `insuranceLimiter`),
 * and a warning is logged once per outage. We chose that over failing open: during an
 * outage reads from the IPFS backends still work and are what a flood would hit, and a
 * per-process limit (N processes allow N × the limit) is a looser limit, not none. Neither
 * way turns a database outage into 500s.
 *
 * Windows start and end on the clock of the process that opened them (the library writes
 * Date.now() + window into the row), so API hosts should keep their clocks in sync.
 */
export function createSharedRateLimiter(options: SharedRateLimiterOptions): RateLimiter {
  const { limit, windowMs } = options;
  checkLimits(limit, windowMs);
  if (limit === 0) return { take: () => UNLIMITED };
  const duration = windowMs / 1000;
  const limiter = new RateLimiterPostgres({
    storeClient: createStoreClient(options),
    storeType: "pool",
    schemaName: options.schema,
    tableName: "api_rate_limit",
    // Created by migration 0004, which runs before the API serves.
    tableCreated: true,
    keyPrefix: "api",
    points: limit,
    duration,
    // A client over its limit is refused from memory until its window ends, so a flood costs
    // the database one query per process, not one per request.
    inMemoryBlockOnConsumed: limit + 1,
    insuranceLimiter: new RateLimiterMemory({ keyPrefix: "api", points: limit, duration }),
  });
  return {
    async take(client) {
      try {
        return allowed(limit, await limiter.consume(client));
      } catch (rejection) {
        // The library rejects with a RateLimiterRes when the limit is reached, with an Error
        // only when the insurance limiter failed too (it lives in memory: it does not).
        if (!(rejection instanceof RateLimiterRes)) throw rejection;
        return {
          allowed: false,
          retryAfterSeconds: Math.max(1, Math.ceil(rejection.msBeforeNext / 1000)),
        };
      }
    },
  };
}

function allowed(limit: number, res: RateLimiterRes): RateDecision {
  return {
    allowed: true,
    remaining: Math.max(0, limit - res.consumedPoints),
    resetSeconds: Math.max(1, Math.ceil(res.msBeforeNext / 1000)),
  };
}

type StoreQuery = { text: string; values?: unknown[] };
type StoreResult = { rows: Record<string, unknown>[]; rowCount: number };

/**
 * The library talks to a pg Pool through `query({ text, values })`; this gives it the API's
 * own pool through kysely instead of a second pool. The pool returns int8 as bigint (see
 * db/connect.ts) and the library does arithmetic on `expire`, so bigints become numbers (a
 * time in ms fits). It logs one warning when the store starts failing and one when it is
 * back, and bounds each query by the timeout.
 */
function createStoreClient(options: SharedRateLimiterOptions) {
  const { db, logger } = options;
  const timeoutMs = options.storeTimeoutMs ?? DEFAULT_STORE_TIMEOUT_MS;
  let failing = false;
  return {
    async query(query: StoreQuery): Promise<StoreResult> {
      let timer: NodeJS.Timeout | undefined;
      try {
        const result = await Promise.race([
          db.executeQuery(CompiledQuery.raw(query.text, query.values ?? [])),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`the rate-limit store did not answer in ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
        if (failing) {
          failing = false;
          logger.info({ msg: "rate-limit store is back; limits are shared again" });
        }
        const rows = (result.rows as Record<string, unknown>[]).map((row) =>
          Object.fromEntries(
            Object.entries(row).map(([k, v]) => [k, typeof v === "bigint" ? Number(v) : v]),
          ),
        );
        return { rows, rowCount: Number(result.numAffectedRows ?? rows.length) };
      } catch (error) {
        if (!failing) {
          failing = true;
          logger.warn({
            msg: "rate-limit store failed; limiting in this process's memory until it is back",
            err: describeError(error),
          });
        }
        throw error;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

const DEFAULT_MAX_CLIENTS = 100_000;

/**
 * Counters in this process's memory, bounded: at most `maxClients` windows are tracked; when
 * full, expired windows are dropped first, then the oldest. Evicting a live window only ever
 * forgives a client, it never blocks one wrongly.
 */
export function createRateLimiter(options: RateLimiterOptions): MemoryRateLimiter {
  const { limit, windowMs } = options;
  const maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
  checkLimits(limit, windowMs);
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
      if (limit === 0) return UNLIMITED;
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
