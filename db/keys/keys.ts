import { type Kysely, sql } from "kysely";
import { generateKeySecret, keyIdOf, keySecretDigest } from "@/core/api-keys.js";
import type { Database } from "../database.js";

/**
 * API keys in the database (`quasar keys create | list | revoke`; the API reads them): one
 * writer for api_key. `schema` is QUASAR_RECONCILER_SCHEMA.
 */

/** Per-key limits on Pinning Service API requests; null means unlimited. */
export type KeyQuota = { pins: number | null; bytes: number | null };

/** A key as the API checks it (never the secret). */
export type StoredKey = {
  id: string;
  label: string;
  quota: KeyQuota;
  revoked: boolean;
};

/** A key with its usage, for `quasar keys list` and the admin route. */
export type KeyUsage = StoredKey & {
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  /** Live Pinning Service API requests and their known bytes. */
  requests: number;
  bytes: number;
};

export type CreateKeyInput = {
  label: string;
  quotaPins?: number | null;
  quotaBytes?: number | null;
  now?: Date;
};

/** Creates a key; the returned secret is the only copy (only its digest is stored). */
export async function createApiKey(
  db: Kysely<Database>,
  schema: string,
  input: CreateKeyInput,
): Promise<{ key: StoredKey; secret: string }> {
  const secret = generateKeySecret();
  const id = keyIdOf(secret);
  await db
    .withSchema(schema)
    .insertInto("api_key")
    .values({
      id,
      secret_sha256: keySecretDigest(secret),
      label: input.label,
      quota_pins: input.quotaPins ?? null,
      quota_bytes: input.quotaBytes ?? null,
      created_at: input.now ?? new Date(),
    })
    .execute();
  return {
    key: {
      id,
      label: input.label,
      quota: { pins: input.quotaPins ?? null, bytes: input.quotaBytes ?? null },
      revoked: false,
    },
    secret,
  };
}

/** The key whose secret has this digest (keySecretDigest), revoked or not; undefined when none. */
export async function findApiKey(
  db: Kysely<Database>,
  schema: string,
  digest: string,
): Promise<StoredKey | undefined> {
  const row = await db
    .withSchema(schema)
    .selectFrom("api_key")
    .select(["id", "label", "quota_pins", "quota_bytes", "revoked_at"])
    .where("secret_sha256", "=", digest)
    .executeTakeFirst();
  if (!row) return undefined;
  return {
    id: row.id,
    label: row.label,
    quota: {
      pins: row.quota_pins === null ? null : Number(row.quota_pins),
      bytes: row.quota_bytes === null ? null : Number(row.quota_bytes),
    },
    revoked: row.revoked_at !== null,
  };
}

/** True when at least one key is not revoked: uploads then need a key. */
export async function hasActiveApiKeys(db: Kysely<Database>, schema: string): Promise<boolean> {
  const row = await db
    .withSchema(schema)
    .selectFrom("api_key")
    .select("id")
    .where("revoked_at", "is", null)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** Records a use of the key (callers throttle: once a minute is plenty). */
export async function touchApiKey(
  db: Kysely<Database>,
  schema: string,
  id: string,
  now: Date,
): Promise<void> {
  await db
    .withSchema(schema)
    .updateTable("api_key")
    .set({ last_used_at: now })
    .where("id", "=", id)
    .execute();
}

/**
 * Revokes the key with this id (or, when unambiguous, id prefix). Returns the id revoked,
 * or undefined when no key matches; revoking twice keeps the first time.
 */
export async function revokeApiKey(
  db: Kysely<Database>,
  schema: string,
  idOrPrefix: string,
  now: Date = new Date(),
): Promise<{ id: string } | { ambiguous: string[] } | undefined> {
  const matches = await db
    .withSchema(schema)
    .selectFrom("api_key")
    .select("id")
    .where(sql<boolean>`starts_with(id, ${idOrPrefix})`)
    .limit(10)
    .execute();
  const exact = matches.find((row) => row.id === idOrPrefix);
  const chosen = exact ?? (matches.length === 1 ? matches[0] : undefined);
  if (!chosen) return matches.length > 1 ? { ambiguous: matches.map((row) => row.id) } : undefined;
  await db
    .withSchema(schema)
    .updateTable("api_key")
    .set({ revoked_at: sql<Date>`coalesce(revoked_at, ${now})` })
    .where("id", "=", chosen.id)
    .execute();
  return { id: chosen.id };
}

/**
 * Every key of the database with its usage, oldest first, plus the usage of bootstrap keys
 * (QUASAR_API_KEYS) that hold requests, labelled "(QUASAR_API_KEYS)".
 */
export async function listApiKeys(db: Kysely<Database>, schema: string): Promise<KeyUsage[]> {
  const scoped = db.withSchema(schema);
  const keys = await scoped
    .selectFrom("api_key as k")
    .leftJoin("psa_usage as u", "u.key_id", "k.id")
    .select([
      "k.id",
      "k.label",
      "k.quota_pins",
      "k.quota_bytes",
      "k.created_at",
      "k.last_used_at",
      "k.revoked_at",
      "u.requests",
      "u.bytes",
    ])
    .orderBy("k.created_at")
    .orderBy("k.id")
    .execute();
  const out: KeyUsage[] = keys.map((row) => ({
    id: row.id,
    label: row.label,
    quota: {
      pins: row.quota_pins === null ? null : Number(row.quota_pins),
      bytes: row.quota_bytes === null ? null : Number(row.quota_bytes),
    },
    revoked: row.revoked_at !== null,
    createdAt: new Date(row.created_at),
    lastUsedAt: row.last_used_at === null ? null : new Date(row.last_used_at),
    revokedAt: row.revoked_at === null ? null : new Date(row.revoked_at),
    requests: Number(row.requests ?? 0),
    bytes: Number(row.bytes ?? 0),
  }));
  const known = new Set(out.map((key) => key.id));
  const others = await scoped
    .selectFrom("psa_usage")
    .select(["key_id", "requests", "bytes"])
    .where(sql<boolean>`requests > 0`)
    .orderBy("key_id")
    .execute();
  for (const row of others) {
    if (known.has(row.key_id)) continue;
    out.push({
      id: row.key_id,
      label: "(QUASAR_API_KEYS)",
      quota: { pins: null, bytes: null },
      revoked: false,
      createdAt: new Date(0),
      lastUsedAt: null,
      revokedAt: null,
      requests: Number(row.requests),
      bytes: Number(row.bytes),
    });
  }
  return out;
}
