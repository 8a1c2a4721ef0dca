import { existsSync, readFileSync } from "node:fs";
import { chmod, mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * `.quasar/dev.env`: the settings of the stack `quasar dev` is running in this directory
 * (ports it picked, the embedded database's URL, the contract addresses), so `quasar status`,
 * `quasar contracts` and `quasar audit` run from another terminal find it. Written by
 * `quasar dev`, removed when it stops; read by those commands *under* the environment (the
 * environment wins). `config check` ignores it: it checks what `quasar start` would use.
 *
 * It may hold a secret: DATABASE_URL as given, password included, when `quasar dev` runs on
 * a database of yours (the embedded one trusts local connections and has none). The other
 * commands need it to connect, so it is kept, readable by its owner only (0600, enforced on
 * every write), and said so in the file's first lines. Nothing prints it unmasked.
 */
export const DEV_DIR = ".quasar";
export const DEV_ENV_FILE = "dev.env";

/** Extra keys `quasar dev` records beside the settings. */
export const DEV_STORAGE_KEY = "QUASAR_DEV_STORAGE";
export const DEV_REGISTRY_KEY = "QUASAR_DEV_REGISTRY";

export function devEnvPath(cwd: string): string {
  return join(cwd, DEV_DIR, DEV_ENV_FILE);
}

/** Parses KEY=VALUE lines; values run to the end of the line (JSON included). */
export function parseDevEnv(text: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (line.trim() === "" || line.startsWith("#")) continue;
    const equals = line.indexOf("=");
    if (equals <= 0) continue;
    result[line.slice(0, equals).trim()] = line.slice(equals + 1);
  }
  return result;
}

export function readDevEnv(cwd: string): Record<string, string> | undefined {
  const path = devEnvPath(cwd);
  if (!existsSync(path)) return undefined;
  return parseDevEnv(readFileSync(path, "utf8"));
}

export async function writeDevEnv(cwd: string, values: Record<string, string>): Promise<void> {
  await mkdir(join(cwd, DEV_DIR), { recursive: true });
  const body = [
    "# Written by `quasar dev` while it runs; other quasar commands in this directory read it.",
    "# May hold a secret (the password in DATABASE_URL): keep it private (mode 0600), never commit it.",
    ...Object.entries(values).map(([key, value]) => `${key}=${value}`),
    "",
  ].join("\n");
  const path = devEnvPath(cwd);
  await writeFile(`${path}.tmp`, body, { mode: 0o600 });
  // `mode` applies only when the file is created: a leftover .tmp keeps its old mode.
  await chmod(`${path}.tmp`, 0o600);
  await rename(`${path}.tmp`, path);
}

/**
 * The environment a command runs with: the process environment over `.quasar/dev.env` (when
 * present in `cwd`), so a running `quasar dev` is found without exporting anything.
 */
export function commandEnvironment(
  env: Readonly<Record<string, string | undefined>>,
  cwd: string,
): Record<string, string | undefined> {
  const dev = readDevEnv(cwd);
  if (!dev) return { ...env };
  const merged: Record<string, string | undefined> = { ...dev };
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && value !== "") merged[key] = value;
  }
  return merged;
}
