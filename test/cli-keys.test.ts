import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApiKeyring } from "@/api/auth.js";
import { createKey, listKeys, revokeKey } from "@/cli/commands/keys.js";
import { connectDatabase } from "@/db/connect.js";
import { findApiKey, hasActiveApiKeys, touchApiKey } from "@/db/keys/keys.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

/**
 * `quasar keys create | list | revoke` on a fresh schema (the command migrates it), and the
 * keyring reading what they wrote: the secret works once created, never appears in a list,
 * and stops working once revoked.
 */
describe("quasar keys", () => {
  let schema: TestSchema;
  let env: Record<string, string>;
  const db = connectDatabase({
    databaseUrl: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres",
  });
  beforeAll(async () => {
    schema = await createTestSchema("keys");
    env = { DATABASE_URL: schema.databaseUrl, QUASAR_RECONCILER_SCHEMA: schema.schema };
  });
  afterAll(async () => {
    await db.destroy();
    await schema?.drop();
  });

  it("create shows a secret once; list shows ids, labels and quotas, never a secret", async () => {
    const { key, secret } = await createKey({ label: "alice", quotaPins: "5" }, env);
    expect(secret).toMatch(/^qsr_[A-Za-z0-9_-]{43}$/);
    expect(key).toMatchObject({ label: "alice", quota: { pins: 5, bytes: null }, revoked: false });
    const list = await listKeys(env);
    expect(list.map((k) => k.id)).toEqual([key.id]);
    expect(JSON.stringify(list)).not.toContain(secret);
    const stored = await db.withSchema(schema.schema).selectFrom("api_key").selectAll().execute();
    expect(JSON.stringify(stored, (_, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain(
      secret,
    );

    const keyring = createApiKeyring([], {
      lookup: {
        find: (digest) => findApiKey(db, schema.schema, digest),
        anyActive: () => hasActiveApiKeys(db, schema.schema),
        touch: (id, now) => touchApiKey(db, schema.schema, id, now),
      },
    });
    expect(await keyring.required()).toBe(true);
    expect(await keyring.authenticate(`Bearer ${secret}`)).toEqual({
      keyId: key.id,
      quota: { pins: 5, bytes: null },
    });
    await expect(keyring.authenticate(`Bearer ${secret}x`)).rejects.toThrow(/not a valid API key/);
  });

  it("refuses a missing label or a bad quota", async () => {
    await expect(createKey({}, env)).rejects.toThrow(/--label/);
    await expect(createKey({ label: "x", quotaPins: "-1" }, env)).rejects.toThrow(/whole number/);
  });

  it("revoke by id prefix; an ambiguous or unknown prefix is refused", async () => {
    const a = await createKey({ label: "a" }, env);
    await createKey({ label: "b" }, env);
    await expect(revokeKey("key-", env)).rejects.toThrow(/several keys/);
    await expect(revokeKey("key-zzzz", env)).rejects.toThrow(/no key/);
    expect(await revokeKey(a.key.id.slice(0, 12), env)).toBe(a.key.id);
    const listed = await listKeys(env);
    expect(listed.find((k) => k.id === a.key.id)).toMatchObject({ revoked: true });
    expect(await findApiKey(db, schema.schema, "0".repeat(64))).toBeUndefined();
  });
});
