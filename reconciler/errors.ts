import { BaseError, NonRetryableError, RetryableError } from "@/core/errors.js";

/** Raised by the ledger (db/), caught here by class. */
export { IllegalTransitionError, LedgerContentionError } from "@/db/errors.js";
/**
 * The reconciler process's errors. Whether to retry is decided by class: Retryable faults
 * (a backend down, a database blip) are retried with backoff; NonRetryable ones stop start-up
 * or mark one item, never the loop. Backend command failures are backends/errors.ts.
 */
export { BaseError, NonRetryableError, RetryableError };

/** A pin made no progress for QUASAR_PIN_INACTIVITY_TIMEOUT and was aborted. */
export class PinInactivityError extends RetryableError {
  override name = "PinInactivityError";
  constructor(timeoutMs: number) {
    super(`pin made no progress for ${timeoutMs} ms`, {
      details:
        "the content may not be reachable on the network; raise QUASAR_PIN_INACTIVITY_TIMEOUT if it is large and slow",
    });
  }
}

/** Start-up cannot continue (bad backends, migration failure); names what to fix. */
export class ReconcilerStartupError extends NonRetryableError {
  override name = "ReconcilerStartupError";
}
