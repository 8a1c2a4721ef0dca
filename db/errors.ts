import { NonRetryableError, RetryableError } from "@/core/errors.js";

/**
 * The database layer's errors (core/errors.ts tree: retryable or not by class). The
 * reconciler re-exports the ledger's, which it raises and catches by name.
 */

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

/** Postgres answers: undefined_table (42P01), invalid_schema_name (3F000). */
const MISSING_RELATION_CODES: readonly string[] = ["42P01", "3F000"];

/**
 * Whether `error` (or one of its causes) is Postgres saying a table or schema does not exist:
 * not created yet (the indexer or the reconciler has not started), or dropped meanwhile.
 */
export function isMissingRelation(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && MISSING_RELATION_CODES.includes(code)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

/** The ledger's state machine refused an event that had to apply; the transaction rolls back. */
export class LedgerRefusedError extends NonRetryableError {
  override name = "LedgerRefusedError";
}

/**
 * The wake-up listener's connection took LISTEN, but a notification sent from another
 * connection never reached it: typically a transaction-pooling proxy (PgBouncer in
 * `transaction` mode) in between, which hands the listening server session to other clients.
 */
export class NotificationsUndeliveredError extends RetryableError {
  override name = "NotificationsUndeliveredError";
  constructor(waitedMs: number) {
    super(
      `a notification sent from another connection did not arrive within ${waitedMs} ms: a transaction-pooling proxy (PgBouncer in transaction mode) drops them; point DATABASE_URL at the server or a session-pooled port`,
    );
  }
}
