import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "pino";
import { type ApiErrorReason, isHttpFailure, RateLimitedError } from "./errors.js";

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

/** The app's one onError. */
export function createErrorHandler(logger: Logger) {
  return (error: Error, c: Context): Response => {
    if (isHttpFailure(error)) {
      const response = errorResponse(
        c,
        error.status,
        error.reason,
        error.shortMessage,
        error.details,
      );
      if (error instanceof RateLimitedError) {
        response.headers.set("retry-after", String(error.retryAfterSeconds));
      }
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
