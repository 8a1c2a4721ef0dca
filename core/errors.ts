/**
 * The root of Quasar's error tree. Whether to retry is decided by class: RetryableError
 * for faults that may pass (network, a daemon restarting), NonRetryableError for input or
 * configuration that will not improve by waiting.
 */
export class BaseError extends Error {
  override name = "BaseError";
  readonly shortMessage: string;
  readonly details: string | undefined;

  constructor(shortMessage: string, options: { cause?: unknown; details?: string } = {}) {
    super(
      options.details ? `${shortMessage}\n\nDetails: ${options.details}` : shortMessage,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.shortMessage = shortMessage;
    this.details = options.details;
  }
}

export class RetryableError extends BaseError {
  override name = "RetryableError";
}

export class NonRetryableError extends BaseError {
  override name = "NonRetryableError";
}

/** Renders any thrown value for a log line or a ledger's last_error, never as `{}`. */
export function describeError(error: unknown): string {
  if (error instanceof BaseError) return error.shortMessage;
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}
