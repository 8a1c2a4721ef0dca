import { createHash, randomBytes } from "node:crypto";

/**
 * API key rules shared by the API (checking a bearer token) and the database layer (storing
 * keys made by `quasar keys create`): how a secret is made, digested and named.
 */

/** The prefix of every generated secret, so a leaked one is recognisable in a scan. */
export const KEY_SECRET_PREFIX = "qsr_";

/** A new secret: 32 random bytes (256 bits), base64url. Shown once, never stored. */
export function generateKeySecret(): string {
  return `${KEY_SECRET_PREFIX}${randomBytes(32).toString("base64url")}`;
}

/**
 * The stored form of a secret: SHA-256 in hex. A plain hash is enough because generated
 * secrets carry 256 bits of entropy (nothing to guess); bootstrap keys from QUASAR_API_KEYS
 * are never stored.
 */
export function keySecretDigest(secret: string): string {
  return createHash("sha256").update(secret, "utf8").digest("hex");
}

/** A stable, non-reversible id for a key: 12 hex characters of a domain-separated hash. */
export function keyIdOf(key: string): string {
  return `key-${createHash("sha256").update(`quasar-api-key:${key}`, "utf8").digest("hex").slice(0, 12)}`;
}
