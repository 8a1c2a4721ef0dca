import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { cp, mkdir, rm, symlink } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import getPort from "get-port";
import { createIndexerLagProbe } from "@/api/indexer-lag.js";
import type { QuasarConfig } from "@/core/config/schema.js";
import { INDEXER_ROOT_ENTRIES } from "@/core/indexer-inputs.js";
import { StartupError } from "../errors.js";
import { chooseLogFormat, useColor } from "../log-format.js";
import { PACKAGE_ROOT, PONDER_BIN, QUASAR_BIN } from "../runtime/paths.js";
import { startEmbeddedPostgres } from "../runtime/postgres.js";
import { exitOf, exitWithParent, stopGroup } from "../runtime/processes.js";
import { type ChildSpec, superviseChildren } from "../runtime/supervisor.js";
import { addSettingOptions, resolveConfig, settingFlagsFrom } from "../settings.js";

/**
 * `quasar start` (every part, supervised) and `quasar indexer|reconciler|api` (one part in
 * this process, for scaling out). Configured entirely by environment and flags.
 */
export const PARTS = ["indexer", "reconciler", "api"] as const;
export type Part = (typeof PARTS)[number];

/** Set in each supervised child: it stops when its stdin (the supervisor) goes away. */
export const SUPERVISED_ENV = "QUASAR_SUPERVISED";

/** The supervisor's view of each part: `node bin/quasar.js <part>` with the resolved environment. */
export function partSpecs(
  parts: readonly Part[],
  env: Record<string, string | undefined>,
  cwd: string,
  config: QuasarConfig,
  /** Extra environment for one part only (e.g. a quieter indexer under `quasar dev`). */
  partEnv: Partial<Record<Part, Record<string, string>>> = {},
): ChildSpec[] {
  // The API starts first and the others once it answers: the API and the reconciler may
  // open one embedded IPFS repository (helia://), whose first opening creates its keys.
  const ordered = [...parts].sort((a, b) => START_ORDER.indexOf(a) - START_ORDER.indexOf(b));
  const host = config.QUASAR_API_HOST === "0.0.0.0" ? "127.0.0.1" : config.QUASAR_API_HOST;
  return ordered.map((part) => ({
    name: part,
    command: process.execPath,
    args: [QUASAR_BIN, part],
    env: { ...env, ...partEnv[part], [SUPERVISED_ENV]: "1" },
    cwd,
    // With port 0 the API picks its own port: nothing to poll, the others start at once.
    ...(part === "api" && config.QUASAR_API_PORT !== 0
      ? { ready: () => httpOk(`http://${host}:${config.QUASAR_API_PORT}/healthz`) }
      : {}),
    ...(part === "indexer"
      ? {
          health: {
            check: indexerHealth(config),
            unhealthyAfterMs: config.QUASAR_INDEXER_STUCK_AFTER,
          },
        }
      : {}),
  }));
}

/**
 * The indexer is unhealthy when, live (its /ready answers), some chain is more than
 * QUASAR_INDEXER_MAX_LAG_BLOCKS behind its head and its indexed block has not moved since the
 * previous check (issue 9: a wedged Ponder still answers /ready and /health). A backfill or
 * a slow catch-up that moves is left alone; its crashes are restarts of their own.
 */
export function indexerHealth(config: QuasarConfig): () => Promise<boolean> {
  const indexerUrl = `http://127.0.0.1:${config.QUASAR_INDEXER_PORT}`;
  const probe = createIndexerLagProbe({ config, indexerUrl });
  const previous = new Map<number, bigint | null>();
  return async () => {
    if (!(await httpOk(`${indexerUrl}/ready`))) return true;
    let healthy = true;
    for (const lag of await probe.check()) {
      if (lag.behind && previous.get(lag.chainId) === lag.indexedBlock) healthy = false;
      previous.set(lag.chainId, lag.indexedBlock);
    }
    return healthy;
  };
}

// The indexer before the reconciler: it creates the event table the reconciler reads.
const START_ORDER: readonly Part[] = ["api", "indexer", "reconciler"];

async function httpOk(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1_000) })).ok;
  } catch {
    return false;
  }
}

/**
 * A Ponder root under `<cwd>/.quasar/indexer`: Ponder writes `.ponder/` and
 * `ponder-env.d.ts` into its root, which must be the user's directory, never the installed
 * package. The copy is refreshed at every start so an upgraded package takes effect.
 */
async function ponderRoot(cwd: string): Promise<string> {
  const root = resolve(cwd, ".quasar", "indexer");
  await mkdir(root, { recursive: true });
  for (const entry of INDEXER_ROOT_ENTRIES) {
    await rm(join(root, entry), { recursive: true, force: true });
    await cp(join(PACKAGE_ROOT, entry), join(root, entry), {
      recursive: true,
      filter: (source) => !source.endsWith(".test.ts"),
    });
  }
  if (!existsSync(join(root, "node_modules"))) {
    await symlink(join(PACKAGE_ROOT, "node_modules"), join(root, "node_modules"));
  }
  return root;
}

const PONDER_LOG_LEVELS: Record<QuasarConfig["QUASAR_LOG_LEVEL"], string> = {
  fatal: "error",
  error: "error",
  warn: "warn",
  info: "info",
  debug: "debug",
  trace: "trace",
  silent: "error",
};

/** Runs the indexer (`ponder start`) as a child until `signal` aborts; returns its exit code. */
export async function runIndexer(
  config: QuasarConfig,
  env: Record<string, string | undefined>,
  signal: AbortSignal,
): Promise<number> {
  const root = await ponderRoot(process.cwd());
  const child = spawn(
    process.execPath,
    [
      PONDER_BIN,
      "--root",
      root,
      "--log-level",
      PONDER_LOG_LEVELS[config.QUASAR_LOG_LEVEL],
      "start",
      "--schema",
      config.QUASAR_INDEXER_SCHEMA,
      "--port",
      String(config.QUASAR_INDEXER_PORT),
      "--hostname",
      config.QUASAR_API_HOST,
    ],
    {
      cwd: root,
      // Our process group: whoever stops us as a group (the supervisor, a terminal's Ctrl-C)
      // stops Ponder too, even if this process dies first.
      detached: false,
      stdio: ["ignore", "inherit", "inherit"],
      env: { ...env, PONDER_TELEMETRY_DISABLED: "true" },
    },
  );
  const stop = () => void stopGroup(child, { timeoutMs: 15_000 });
  signal.addEventListener("abort", stop, { once: true });
  const { code, signal: killedBy } = await exitOf(child);
  signal.removeEventListener("abort", stop);
  if (signal.aborted) return 0;
  return code ?? (killedBy ? 1 : 0);
}

async function runPart(
  part: Part,
  options: Record<string, unknown>,
  signal: AbortSignal,
): Promise<void> {
  const { config, env } = resolveConfig(process.env, settingFlagsFrom(options));
  const controller = new AbortController();
  signal.addEventListener("abort", () => controller.abort(signal.reason), { once: true });
  if (process.env[SUPERVISED_ENV] === "1") exitWithParent(controller);
  switch (part) {
    case "indexer": {
      const code = await runIndexer(config, env, controller.signal);
      if (code !== 0) process.exitCode = code;
      return;
    }
    case "reconciler": {
      const { runReconciler } = await import("@/reconciler/main.js");
      await runReconciler(config, controller.signal);
      return;
    }
    case "api": {
      const { runApi } = await import("@/api/main.js");
      const running = await runApi(config, controller.signal);
      await running.closed;
      return;
    }
  }
}

export function registerStartCommands(program: Command, signal: AbortSignal): void {
  addSettingOptions(
    program
      .command("start")
      .description(
        "Run the indexer, the reconciler and the API together: one log stream, graceful shutdown, a crashed part restarted with backoff. Configured by environment and flags only.",
      )
      .option(
        "--embedded-postgres",
        "run an embedded PostgreSQL under .quasar/pg instead of DATABASE_URL",
      )
      .option("--only <parts>", "comma-separated subset of indexer,reconciler,api")
      .option("--pretty", "render the parts' logs for a person (default on a terminal)")
      .option("--json", "the parts' raw JSON log lines (default when stdout is not a terminal)"),
  ).action(async (options: Record<string, unknown>) => {
    const flags = settingFlagsFrom(options);
    // Validate before anything starts: a bad setting stops here, named.
    let { env, config } = resolveConfig(process.env, flags);
    const parts = parseParts(options.only);
    let database: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
    if (options.embeddedPostgres === true) {
      const port = await getPort({ port: 5433 });
      database = await startEmbeddedPostgres({
        dataDir: resolve(".quasar", "pg"),
        port,
        log: process.stderr,
      });
      ({ env, config } = resolveConfig({ ...process.env, DATABASE_URL: database.url }, flags));
    }
    try {
      const supervisor = superviseChildren({
        children: partSpecs(parts, env, process.cwd(), config),
        signal,
        format: chooseLogFormat(options, process.stdout.isTTY ? "pretty" : "json"),
        color: useColor(process.stdout),
      });
      await supervisor.done;
    } finally {
      await database?.stop();
    }
  });

  for (const part of PARTS) {
    addSettingOptions(
      program.command(part).description(
        {
          indexer: "Run only the indexer (ponder start) in the foreground",
          reconciler: "Run only the reconciler in the foreground",
          api: "Run only the HTTP API in the foreground",
        }[part],
      ),
    ).action((options: Record<string, unknown>) => runPart(part, options, signal));
  }
}

function parseParts(only: unknown): Part[] {
  if (typeof only !== "string") return [...PARTS];
  const parts = only
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
  for (const part of parts) {
    if (!(PARTS as readonly string[]).includes(part)) {
      throw new StartupError(`--only: unknown part "${part}" (expected indexer, reconciler, api)`);
    }
  }
  return parts as Part[];
}
