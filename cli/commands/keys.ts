import type { Command } from "commander";
import { createApiKey, type KeyUsage, listApiKeys, revokeApiKey } from "@/db/keys/keys.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { openDatabase, parseWholeNumber, toJson } from "../common.js";
import { commandEnvironment } from "../dev-env.js";
import { UsageError } from "../errors.js";
import { addSettingOptions, applySettingFlags, resolveConfig } from "../settings.js";
import { formatTable } from "../table.js";

/**
 * `quasar keys create | list | revoke`: API keys in PostgreSQL (db/keys). The secret is
 * printed once by `create` and never stored; `list` shows ids, labels, quotas and usage.
 * QUASAR_API_KEYS keeps working beside them as a bootstrap list.
 */

type Env = Readonly<Record<string, string | undefined>>;

async function withDatabase<T>(
  env: Env,
  work: (db: ReturnType<typeof openDatabase>, schema: string) => Promise<T>,
): Promise<T> {
  const { config } = resolveConfig(env);
  const db = openDatabase(config, "quasar-keys");
  try {
    const schema = config.QUASAR_RECONCILER_SCHEMA;
    // The keys' table comes with a migration: a fresh database gets it here.
    await migrateToLatest(db, schema);
    return await work(db, schema);
  } finally {
    await db.destroy();
  }
}

export type CreateKeyOptions = { label?: string; quotaPins?: string; quotaBytes?: string };

/** Creates a key; returns its id and the secret (shown once). */
export async function createKey(options: CreateKeyOptions, env: Env) {
  const label = (options.label ?? "").trim();
  if (label === "" || label.length > 200) {
    throw new UsageError("--label is required (1 to 200 characters)");
  }
  const quotaPins =
    options.quotaPins === undefined ? null : parseWholeNumber(options.quotaPins, "--quota-pins");
  const quotaBytes =
    options.quotaBytes === undefined ? null : parseWholeNumber(options.quotaBytes, "--quota-bytes");
  return withDatabase(env, (db, schema) =>
    createApiKey(db, schema, { label, quotaPins, quotaBytes }),
  );
}

export function listKeys(env: Env): Promise<KeyUsage[]> {
  return withDatabase(env, (db, schema) => listApiKeys(db, schema));
}

export async function revokeKey(id: string, env: Env): Promise<string> {
  const result = await withDatabase(env, (db, schema) => revokeApiKey(db, schema, id));
  if (result === undefined) throw new UsageError(`no key "${id}"`);
  if ("ambiguous" in result) {
    throw new UsageError(`"${id}" names several keys`, { details: result.ambiguous.join(", ") });
  }
  return result.id;
}

const quotaText = (value: number | null) => (value === null ? "-" : String(value));

export function registerKeysCommands(program: Command): void {
  const keys = program
    .command("keys")
    .description("API keys for uploads and the Pinning Service API, stored hashed in PostgreSQL");

  const envOf = (options: Record<string, unknown>) =>
    applySettingFlags(options, commandEnvironment(process.env, process.cwd()));

  addSettingOptions(
    keys
      .command("create")
      .description("Create a key and print its secret (shown once: store it now)")
      .option("--label <text>", "what the key is for (required; shown by `keys list`)")
      .option("--quota-pins <n>", "at most this many live Pinning Service API requests")
      .option("--quota-bytes <n>", "at most this many bytes of pins whose size Quasar knows")
      .option("--json", "print JSON"),
    { hidden: true },
  ).action(async (options: CreateKeyOptions & Record<string, unknown>) => {
    const { key, secret } = await createKey(options, envOf(options));
    if (options.json === true) {
      process.stdout.write(`${toJson({ ...key, secret })}\n`);
      return;
    }
    process.stdout.write(`key ${key.id} (${key.label})\n`);
    process.stdout.write(`secret ${secret}\n`);
    process.stderr.write("the secret is shown once; Quasar keeps only its SHA-256\n");
  });

  addSettingOptions(
    keys
      .command("list")
      .description("Every key with its label, quotas, usage and times (never a secret)")
      .option("--json", "print JSON"),
    { hidden: true },
  ).action(async (options: Record<string, unknown>) => {
    const list = await listKeys(envOf(options));
    if (options.json === true) {
      process.stdout.write(`${toJson(list)}\n`);
      return;
    }
    const rows = list.map((key) => [
      key.id,
      key.label,
      key.revoked ? "revoked" : "active",
      `${key.requests}/${quotaText(key.quota.pins)}`,
      `${key.bytes}/${quotaText(key.quota.bytes)}`,
      key.createdAt.getTime() === 0 ? "-" : key.createdAt.toISOString(),
      key.lastUsedAt?.toISOString() ?? "-",
    ]);
    process.stdout.write(
      `${formatTable(["ID", "LABEL", "STATE", "PINS/QUOTA", "BYTES/QUOTA", "CREATED", "LAST USED"], rows)}\n`,
    );
  });

  addSettingOptions(
    keys
      .command("revoke <id>")
      .description(
        "Revoke a key (by id or unambiguous id prefix); its requests stay until deleted",
      ),
    { hidden: true },
  ).action(async (id: string, options: Record<string, unknown>) => {
    const revoked = await revokeKey(id, envOf(options));
    process.stdout.write(`revoked ${revoked}\n`);
  });
}
