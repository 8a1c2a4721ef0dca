import { createHash, timingSafeEqual } from "node:crypto";
import { AdminDisabledError, UnauthorizedError } from "./errors.js";

/**
 * Bearer-token checks for uploads (QUASAR_API_KEYS) and admin routes (QUASAR_ADMIN_TOKEN).
 *
 * Tokens are compared as SHA-256 digests with crypto.timingSafeEqual, against every
 * configured key without stopping at the first match, so neither the position of a match
 * nor the length of a key leaks through timing. Keys never leave this module: callers see
 * a key id (a short hash) that is safe to record as the uploader and to log.
 */

/** Who made a request, as recorded with an upload: a key id, or "anonymous" when keys are off. */
export type Caller = { keyId: string };

/** Checks upload credentials. Built once at start from the configured keys. */
export type ApiKeyring = {
  /** True when QUASAR_API_KEYS is set and uploads need a key. */
  readonly required: boolean;
  /**
   * The caller presenting `authorization` (the raw header). Throws UnauthorizedError when keys
   * are required and the header is missing or names no configured key.
   */
  authenticate(authorization: string | undefined): Caller;
  /** The key id of a valid bearer token, or undefined (for rate-limit keys; never throws). */
  identify(authorization: string | undefined): string | undefined;
};

/** Checks the admin token; throws AdminDisabledError when no admin token is configured. */
export type AdminGuard = {
  readonly enabled: boolean;
  check(authorization: string | undefined): void;
};

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

/** A stable, non-reversible id for a key: 12 hex characters of a domain-separated hash. */
export function keyIdOf(key: string): string {
  return `key-${createHash("sha256").update(`quasar-api-key:${key}`, "utf8").digest("hex").slice(0, 12)}`;
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S{1,4096})[ \t]*$/i.exec(authorization);
  return match?.[1];
}

/** Index of the key whose digest equals the token's, comparing against all of them. */
function matchIndex(token: string, digests: readonly Buffer[]): number {
  const presented = digest(token);
  let found = -1;
  digests.forEach((candidate, index) => {
    // Evaluate every comparison; a short-circuit would reveal which key matched.
    if (timingSafeEqual(presented, candidate) && found < 0) found = index;
  });
  return found;
}

export function createApiKeyring(keys: readonly string[]): ApiKeyring {
  const digests = keys.map(digest);
  const ids = keys.map(keyIdOf);
  const identify = (authorization: string | undefined): string | undefined => {
    const token = bearerToken(authorization);
    if (token === undefined || digests.length === 0) return undefined;
    const index = matchIndex(token, digests);
    return index >= 0 ? ids[index] : undefined;
  };
  return {
    required: keys.length > 0,
    identify,
    authenticate(authorization) {
      if (keys.length === 0) return { keyId: "anonymous" };
      if (bearerToken(authorization) === undefined) throw new UnauthorizedError();
      const keyId = identify(authorization);
      if (keyId === undefined)
        throw new UnauthorizedError("the bearer token is not a valid API key");
      return { keyId };
    },
  };
}

export function createAdminGuard(token: string): AdminGuard {
  const expected = token === "" ? undefined : digest(token);
  return {
    enabled: expected !== undefined,
    check(authorization) {
      if (expected === undefined) throw new AdminDisabledError();
      const presented = bearerToken(authorization);
      if (presented === undefined) throw new UnauthorizedError();
      if (!timingSafeEqual(digest(presented), expected)) {
        throw new UnauthorizedError("the bearer token is not the admin token");
      }
    },
  };
}
