import { describeError, NonRetryableError } from "@/core/errors.js";
import type { LedgerChange, LedgerRow } from "@/db/ledger/ledger.js";
import type { PinState } from "@/db/ledger/pin-status.js";
import { type BackoffPolicy, backoffDelayMs } from "./backoff.js";

/**
 * What a failed command leads to: retried soon with backoff, retried slowly after giving up,
 * or put back in its queue untouched when the command was abandoned rather than refused.
 * Pure: the worker feeds in the row, the error and the clock, and writes the change.
 */

export type RetryPolicy = {
  retry: BackoffPolicy;
  /** Delay between the slow retries of a pin that was given up (status failed). */
  failedRetryIntervalMs: number;
};

export type DecidePinFailureParameters = {
  backendId: string;
  row: Pick<LedgerRow, "cid" | "attempts" | "deadline_at" | "status">;
  error: unknown;
  at: Date;
  policy: RetryPolicy;
  /** Jitter source for the backoff (tests pass a constant). */
  random?: () => number;
};

/**
 * A pin that failed on a backend that still answers. Given up (pin_give_up, retried every
 * failedRetryIntervalMs) when the backend refused it for good (NonRetryableError), when its
 * deadline passed, or when it had already been given up; otherwise retried with backoff.
 */
export function decidePinFailure(params: DecidePinFailureParameters): LedgerChange {
  const { backendId, row, error, at, policy } = params;
  const attempts = row.attempts + 1;
  const lastError = describeError(error);
  const base = { backendId, cid: row.cid, expect: "pinning" as const };
  const pastDeadline = row.deadline_at !== null && at.getTime() >= row.deadline_at.getTime();
  if (error instanceof NonRetryableError || pastDeadline || row.status === "failed") {
    return {
      ...base,
      event: "pin_give_up",
      set: {
        attempts,
        last_error: lastError,
        next_attempt_at: new Date(at.getTime() + policy.failedRetryIntervalMs),
      },
      log: {
        decision: "mark_failed",
        reason: pastDeadline ? "deadline passed" : "the backend refused the pin",
        outcome: "error",
        error: lastError,
      },
    };
  }
  return {
    ...base,
    event: "pin_error",
    set: {
      attempts,
      last_error: lastError,
      next_attempt_at: new Date(
        at.getTime() + backoffDelayMs(attempts, policy.retry, params.random),
      ),
    },
    log: { decision: "pin", reason: `attempt ${attempts}`, outcome: "error", error: lastError },
  };
}

export type DecideUnpinFailureParameters = {
  backendId: string;
  row: Pick<LedgerRow, "cid" | "attempts">;
  error: unknown;
  at: Date;
  retry: BackoffPolicy;
  random?: () => number;
};

/** An unpin that failed on a backend that still answers: never given up, retried with backoff. */
export function decideUnpinFailure(params: DecideUnpinFailureParameters): LedgerChange {
  const { row, at } = params;
  const attempts = row.attempts + 1;
  const lastError = describeError(params.error);
  return {
    backendId: params.backendId,
    cid: row.cid,
    expect: "unpinning",
    event: "unpin_error",
    set: {
      attempts,
      last_error: lastError,
      next_attempt_at: new Date(
        at.getTime() + backoffDelayMs(attempts, params.retry, params.random),
      ),
    },
    log: { decision: "unpin", reason: `attempt ${attempts}`, outcome: "error", error: lastError },
  };
}

export type DecideRecoverParameters = {
  backendId: string;
  row: { cid: string; status: PinState };
  error: unknown;
  /** The worker is shutting down. */
  stopping: boolean;
  /** The backend answered its last probe. */
  up: boolean;
};

/** Back to its queue without counting an attempt: the command was abandoned, not refused. */
export function decideRecover(params: DecideRecoverParameters): LedgerChange {
  const { row, stopping, up } = params;
  const error = describeError(params.error);
  return {
    backendId: params.backendId,
    cid: row.cid,
    expect: row.status,
    event: "recover",
    set: { last_error: error },
    log: {
      decision: "recover",
      reason: stopping
        ? "abandoned at shutdown"
        : up
          ? "command interrupted"
          : "backend unavailable",
      outcome: "error",
      error,
    },
  };
}

/**
 * How often a worker whose backend is down probes it again: the retry backoff, but never
 * slower than every 30 s nor starting above 1 s, so a backend that returns is used soon.
 */
export function downProbePolicy(retry: BackoffPolicy): BackoffPolicy {
  return { baseMs: Math.min(retry.baseMs, 1_000), maxMs: Math.min(retry.maxMs, 30_000) };
}
