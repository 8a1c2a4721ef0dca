import { createHash, timingSafeEqual } from "node:crypto";
import { keyIdOf, keySecretDigest } from "@/core/api-keys.js";
import { AdminDisabledError, UnauthorizedError } from "./errors.js";

/**
 * Bearer-token checks for API keys and admin routes (QUASAR_ADMIN_TOKEN).
 *
 * API keys come from two places: the database (`quasar keys create`; only the SHA-256 of each
 * secret is stored, looked up by that digest) and QUASAR_API_KEYS, the bootstrap list. The
 * bootstrap keys are compared as SHA-256 digests with crypto.timingSafeEqual against every
 * configured key without stopping at the first match, so neither the position of a match nor
 * the length of a key leaks through timing. A database lookup by digest reveals nothing about
 * the secret either. Keys never leave this module: callers see a key id (a short hash) that is
 * safe to record as the uploader and to log.
 */

export { keyIdOf } from "@/core/api-keys.js";

/** Per-key limits on Pinning Service API requests; null means unlimited. */
export type CallerQuota = { pins: number | null; bytes: number | null };

/** Who made a request: a key id (or "anonymous" when keys are off for uploads) and its quota. */
export type Caller = { keyId: string; quota?: CallerQuota };

/** A key stored in the database, as the keyring needs it. */
export type StoredApiKey = { id: string; quota: CallerQuota; revoked: boolean };

/** The database side of the keyring (api/store.ts implements it over db/keys). */
export type ApiKeyLookup = {
  /** The key whose secret has this SHA-256 (hex), revoked or not. */
  find(digest: string): Promise<StoredApiKey | undefined>;
  /** True when at least one stored key is not revoked. */
  anyActive(): Promise<boolean>;
  /** Records that the key was used now (the keyring throttles the calls). */
  touch(id: string, now: Date): Promise<void>;
};

/** Checks API keys. Built once at start. */
export type ApiKeyring = {
  /** True when uploads need a key: QUASAR_API_KEYS is set or the database holds an active key. */
  required(): Promise<boolean>;
  /**
   * The caller presenting `authorization` (the raw header). Throws UnauthorizedError when
   * `always` or keys are required, and the header is missing or names no valid key.
   */
  authenticate(authorization: string | undefined, options?: { always?: boolean }): Promise<Caller>;
  /** The key id of a valid bearer token, or undefined (for rate-limit keys; never throws). */
  identify(authorization: string | undefined): Promise<string | undefined>;
};

/** Checks the admin token; throws AdminDisabledError when no admin token is configured. */
export type AdminGuard = {
  readonly enabled: boolean;
  check(authorization: string | undefined): void;
};

const digest = (value: string): Buffer => createHash("sha256").update(value, "utf8").digest();

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

/** How long a database answer is reused: a revoked key stops working within this time. */
export const KEY_CACHE_MS = 5_000;
/** At most one last-use write per key per this period. */
const TOUCH_EVERY_MS = 60_000;
/** Cached lookups kept at most (a flood of wrong tokens must not grow memory). */
const CACHE_ENTRIES = 10_000;

export type ApiKeyringOptions = {
  /** Stored keys; without it only QUASAR_API_KEYS count. */
  lookup?: ApiKeyLookup;
  now?: () => number;
};

export function createApiKeyring(
  keys: readonly string[],
  options: ApiKeyringOptions = {},
): ApiKeyring {
  const { lookup } = options;
  const now = options.now ?? Date.now;
  const digests = keys.map(digest);
  const ids = keys.map(keyIdOf);
  const cache = new Map<string, { key: StoredApiKey | undefined; at: number }>();
  const touched = new Map<string, number>();
  let active: { value: boolean; at: number } | undefined;

  const stored = async (token: string): Promise<StoredApiKey | undefined> => {
    if (!lookup) return undefined;
    const hex = keySecretDigest(token);
    const hit = cache.get(hex);
    const at = now();
    if (hit && at - hit.at < KEY_CACHE_MS) return hit.key;
    const key = await lookup.find(hex);
    if (cache.size >= CACHE_ENTRIES) cache.clear();
    cache.set(hex, { key, at });
    return key;
  };

  const resolve = async (authorization: string | undefined): Promise<Caller | undefined> => {
    const token = bearerToken(authorization);
    if (token === undefined) return undefined;
    if (digests.length > 0) {
      const index = matchIndex(token, digests);
      if (index >= 0) return { keyId: ids[index] as string };
    }
    const key = await stored(token);
    if (!key || key.revoked) return undefined;
    const at = now();
    if (lookup && at - (touched.get(key.id) ?? 0) >= TOUCH_EVERY_MS) {
      touched.set(key.id, at);
      // Best effort: a missed last-use time never fails a request.
      lookup.touch(key.id, new Date(at)).catch(() => {});
    }
    return { keyId: key.id, quota: key.quota };
  };

  const required = async (): Promise<boolean> => {
    if (keys.length > 0) return true;
    if (!lookup) return false;
    const at = now();
    if (active && at - active.at < KEY_CACHE_MS) return active.value;
    active = { value: await lookup.anyActive(), at };
    return active.value;
  };

  return {
    required,
    async identify(authorization) {
      return (await resolve(authorization))?.keyId;
    },
    async authenticate(authorization, { always = false } = {}) {
      if (!always && !(await required())) return { keyId: "anonymous" };
      if (bearerToken(authorization) === undefined) throw new UnauthorizedError();
      const caller = await resolve(authorization);
      if (caller === undefined)
        throw new UnauthorizedError("the bearer token is not a valid API key");
      return caller;
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
