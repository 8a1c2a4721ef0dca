import { type BaseError, NonRetryableError, RetryableError } from "@/core/errors.js";

/**
 * The API process's errors. Every failure a route can produce is one of these classes; the
 * one onError (api/error-format.ts) turns it into the route's error format. Anything else
 * that escapes a handler is an internal error: logged in full, answered as a bare 500 with no
 * message, stack or backend address.
 *
 * Client mistakes are NonRetryable (retrying the same request cannot help); a backend or the
 * database being unavailable is Retryable (503, the client may try again).
 */

/** Every machine-readable reason an API error can carry, in UPPER_SNAKE as the Pinning Service API does. */
export const API_ERROR_REASONS = [
  "BAD_REQUEST",
  "INVALID_ARGUMENT",
  "INVALID_JSON",
  "INVALID_MULTIPART",
  "MISSING_FILE",
  "UNSUPPORTED_MEDIA_TYPE",
  "PAYLOAD_TOO_LARGE",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "ADMIN_DISABLED",
  "NOT_FOUND",
  "INSUFFICIENT_FUNDS",
  "METHOD_NOT_ALLOWED",
  "RATE_LIMITED",
  "TOO_MANY_UPLOADS",
  "REQUEST_TIMEOUT",
  "CLIENT_CLOSED_REQUEST",
  "BACKEND_UNAVAILABLE",
  "DATABASE_UNAVAILABLE",
  "STORAGE_FAILED",
  "INTERNAL_ERROR",
] as const;
export type ApiErrorReason = (typeof API_ERROR_REASONS)[number];

/** What every API error exposes to the error formatter. `details` is safe to show to the client. */
export interface HttpFailure {
  readonly status: number;
  readonly reason: ApiErrorReason;
  readonly details: string | undefined;
  readonly shortMessage: string;
}

/** A request the client must change before retrying (4xx). */
export class ClientError extends NonRetryableError implements HttpFailure {
  override name = "ClientError";
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 408 | 409 | 413 | 415 | 429 | 499,
    readonly reason: ApiErrorReason,
    shortMessage: string,
    options: { details?: string; cause?: unknown } = {},
  ) {
    super(shortMessage, options);
  }
}

export class InvalidArgumentError extends ClientError {
  override name = "InvalidArgumentError";
  constructor(details: string) {
    super(400, "INVALID_ARGUMENT", "invalid argument", { details });
  }
}

export class InvalidJsonError extends ClientError {
  override name = "InvalidJsonError";
  constructor(details: string) {
    super(400, "INVALID_JSON", "the body is not valid JSON", { details });
  }
}

export class InvalidMultipartError extends ClientError {
  override name = "InvalidMultipartError";
  constructor(details: string) {
    super(400, "INVALID_MULTIPART", "malformed multipart body", { details });
  }
}

export class MissingFileError extends ClientError {
  override name = "MissingFileError";
  constructor(fields: readonly string[]) {
    super(400, "MISSING_FILE", "no file in the multipart body", {
      details: `expected a part named ${fields.map((f) => `"${f}"`).join(" or ")}`,
    });
  }
}

export class UnsupportedMediaTypeError extends ClientError {
  override name = "UnsupportedMediaTypeError";
  constructor(expected: string, received: string | undefined) {
    super(415, "UNSUPPORTED_MEDIA_TYPE", "unsupported content type", {
      details: `expected ${expected}, got ${received ? JSON.stringify(received.slice(0, 100)) : "none"}`,
    });
  }
}

export class PayloadTooLargeError extends ClientError {
  override name = "PayloadTooLargeError";
  constructor(readonly limitBytes: number) {
    super(413, "PAYLOAD_TOO_LARGE", "request body too large", {
      details: `the limit is ${limitBytes} bytes`,
    });
  }
}

export class UnauthorizedError extends ClientError {
  override name = "UnauthorizedError";
  constructor(details = "send a valid token as 'Authorization: Bearer <token>'") {
    super(401, "UNAUTHORIZED", "missing or invalid credentials", { details });
  }
}

export class AdminDisabledError extends ClientError {
  override name = "AdminDisabledError";
  constructor() {
    super(403, "ADMIN_DISABLED", "admin routes are disabled", {
      details: "set QUASAR_ADMIN_TOKEN on the server to enable them",
    });
  }
}

export class NotFoundError extends ClientError {
  override name = "NotFoundError";
  constructor(details: string) {
    super(404, "NOT_FOUND", "not found", { details });
  }
}

/** A key's quota (pins or bytes) would be exceeded: the Pinning Service API's 409. */
export class InsufficientFundsError extends ClientError {
  override name = "InsufficientFundsError";
  constructor(details: string) {
    super(409, "INSUFFICIENT_FUNDS", "the key's quota is exhausted", { details });
  }
}

export class RateLimitedError extends ClientError {
  override name = "RateLimitedError";
  constructor(readonly retryAfterSeconds: number) {
    super(429, "RATE_LIMITED", "too many requests", {
      details: `retry after ${retryAfterSeconds} s`,
    });
  }
}

/** Too many uploads from one client at once (QUASAR_MAX_UPLOADS_PER_CLIENT); answered with Retry-After. */
export class TooManyUploadsError extends ClientError {
  override name = "TooManyUploadsError";
  readonly retryAfterSeconds = 1;
  constructor(readonly limit: number) {
    super(429, "TOO_MANY_UPLOADS", "too many uploads at once", {
      details: `at most ${limit} uploads at once per client; retry when one has finished`,
    });
  }
}

/** The request body stopped arriving for longer than QUASAR_BODY_IDLE_TIMEOUT. */
export class BodyIdleTimeoutError extends ClientError {
  override name = "BodyIdleTimeoutError";
  constructor(readonly idleMs: number) {
    super(408, "REQUEST_TIMEOUT", "the request body stopped arriving", {
      details: `no bytes for ${idleMs} ms; the body was cut off`,
    });
  }
}

/**
 * The client closed the connection before the answer (nginx's 499). Nobody reads the answer;
 * it exists so logs and metrics count the abort apart from the server's own failures.
 */
export class ClientClosedError extends ClientError {
  override name = "ClientClosedError";
  constructor(cause?: unknown) {
    super(499, "CLIENT_CLOSED_REQUEST", "the client closed the request", { cause });
  }
}

/** A backend or the database failed in a way that may pass (503). */
export class UnavailableError extends RetryableError implements HttpFailure {
  override name = "UnavailableError";
  readonly status = 503;
  constructor(
    readonly reason: "BACKEND_UNAVAILABLE" | "STORAGE_FAILED" | "DATABASE_UNAVAILABLE",
    shortMessage: string,
    options: { details?: string; cause?: unknown } = {},
  ) {
    super(shortMessage, options);
  }
}

/** True for errors whose message may be shown to the client. */
export function isHttpFailure(error: unknown): error is BaseError & HttpFailure {
  return error instanceof ClientError || error instanceof UnavailableError;
}
