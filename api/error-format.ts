import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "pino";
import { describeError } from "@/core/errors.js";
import { isDatabaseUnavailable } from "@/db/connect.js";
import {
  type ApiErrorReason,
  ClientClosedError,
  isHttpFailure,
  UnavailableError,
} from "./errors.js";

/**
 * One place decides how an error looks on the wire. Two formats, chosen by mount point:
 *
 * - Quasar routes (everything outside /kubo): `{"error": {"reason": "UPPER_SNAKE", "details": "…"}}`,
 *   the IPFS Pinning Service API's shape, with the HTTP status saying the class of failure.
 * - The Kubo mount (/kubo/api/v0/…): `{"Message": "…", "Code": 0|1, "Type": "error"}` as Kubo
 *   answers, so kubo-rpc-client raises an Error with our message. Code 1 = client error.
 *
 * Never `{}`, never a stack trace, never a backend's address: unknown errors are logged with
 * their cause and answered as a bare INTERNAL_ERROR.
 */

export const KUBO_MOUNT = "/kubo";

export type ErrorBody =
  | { error: { reason: ApiErrorReason; details: string } }
  | { Message: string; Code: 0 | 1; Type: "error" };

export function isKuboPath(path: string): boolean {
  return path === KUBO_MOUNT || path.startsWith(`${KUBO_MOUNT}/`);
}

export function errorResponse(
  c: Context,
  status: number,
  reason: ApiErrorReason,
  message: string,
  details: string | undefined,
): Response {
  const kubo = isKuboPath(c.req.path);
  const text = details ? `${message}: ${details}` : message;
  const body: ErrorBody = kubo
    ? { Message: text, Code: status < 500 ? 1 : 0, Type: "error" }
    : { error: { reason, details: text } };
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8" },
  });
}

/**
 * Turns what escaped a handler into an API error, once for every route: a client that went
 * away is a 499 whatever the handler threw on its way out (a cut stream, a backend abort);
 * a database that cannot be reached, is frozen or shuts down is 503, never a bare 500.
 */
function classify(error: Error, c: Context): Error {
  if (c.req.raw.signal?.aborted && !(error instanceof ClientClosedError)) {
    return new ClientClosedError(error);
  }
  if (!isHttpFailure(error) && isDatabaseUnavailable(error)) {
    return new UnavailableError("DATABASE_UNAVAILABLE", "the database is unavailable", {
      details: "retry later",
      cause: error,
    });
  }
  return error;
}

/** The app's one onError. */
export function createErrorHandler(logger: Logger) {
  return (thrown: Error, c: Context): Response => {
    const error = classify(thrown, c);
    if (error instanceof ClientClosedError) {
      // Not the server's failure: an info line, and the 499 keeps it out of the 5xx counts.
      logger.info({
        msg: "client closed the request",
        path: c.req.path,
        err: describeError(error.cause),
      });
      return errorResponse(c, error.status, error.reason, error.shortMessage, error.details);
    }
    if (isHttpFailure(error)) {
      const response = errorResponse(
        c,
        error.status,
        error.reason,
        error.shortMessage,
        error.details,
      );
      if ("retryAfterSeconds" in error && typeof error.retryAfterSeconds === "number") {
        response.headers.set("retry-after", String(error.retryAfterSeconds));
      }
      if (error.status === 408) response.headers.set("connection", "close");
      if (error.status >= 500) {
        logger.warn({
          msg: "request failed",
          path: c.req.path,
          reason: error.reason,
          err: error.cause ?? error,
        });
      }
      return response;
    }
    if (error instanceof HTTPException && error.status < 500) {
      return errorResponse(
        c,
        error.status,
        "BAD_REQUEST",
        "bad request",
        error.message || undefined,
      );
    }
    logger.error({ msg: "unhandled error", path: c.req.path, err: error });
    return errorResponse(c, 500, "INTERNAL_ERROR", "internal error", undefined);
  };
}
