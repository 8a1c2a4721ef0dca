import { NonRetryableError, RetryableError } from "@/core/errors.js";

/** The ledger's own failures; whether to retry is decided by class (core/errors.ts). */

/** A ledger write found rows changing under it more often than it is willing to retry. */
export class LedgerContentionError extends RetryableError {
  override name = "LedgerContentionError";
}

/** An event the pin state machine does not allow was requested where it must apply. */
export class IllegalTransitionError extends NonRetryableError {
  override name = "IllegalTransitionError";
  constructor(from: string, event: string, details?: string) {
    super(
      `illegal pin transition: ${event} from ${from}`,
      details === undefined ? {} : { details },
    );
  }
}
