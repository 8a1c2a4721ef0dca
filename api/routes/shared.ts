import type { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { Caller } from "../auth.js";
import type { ApiCommon, ApiEnv } from "../context.js";
import { UnsupportedMediaTypeError } from "../errors.js";

/** The app type every route module extends. */
export type ApiApp = OpenAPIHono<ApiEnv>;

/** Checks the upload credentials and remembers the caller for logs and the optimistic pin. */
export async function authenticateUpload(c: Context<ApiEnv>, common: ApiCommon): Promise<Caller> {
  const caller = await common.keyring.authenticate(c.req.header("authorization"));
  c.set("caller", caller);
  return caller;
}

/** All query parameters, first value of each, for zod to validate. */
export function queryOf(c: Context<ApiEnv>): Record<string, string> {
  return c.req.query();
}

/** Requires a JSON content type (application/json or application/*+json). */
export function requireJson(c: Context<ApiEnv>): void {
  const type = c.req.header("content-type");
  const essence = (type ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
  if (!/^application\/([a-z0-9.+-]+\+)?json$/.test(essence)) {
    throw new UnsupportedMediaTypeError("application/json", type);
  }
}

/** The request's abort signal (client gone), or a never-aborting one in app.request tests. */
export function requestSignal(c: Context<ApiEnv>): AbortSignal {
  return c.req.raw.signal ?? new AbortController().signal;
}

/** Shared OpenAPI response entries. */
export const errorResponses = {
  400: { description: "Invalid input: `{error: {reason, details}}`" },
  401: { description: "Missing or invalid bearer token" },
  413: { description: "Body over the limit" },
  415: { description: "Wrong content type" },
  429: { description: "Rate limited; see Retry-After" },
  503: { description: "A backend or the database is unavailable" },
} as const;
