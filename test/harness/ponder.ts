/**
 * Runs the real indexer (`ponder start`) as a child process for a test or a benchmark.
 *
 * ```ts
 * const db = await createTestSchema("idx");
 * const ponder = await startPonder({ databaseUrl: db.databaseUrl, schema: db.schema, chains });
 * afterAll(async () => { await ponder.stop(); await db.drop(); });
 * await ponder.waitForBlock(chainId, 12n);
 * ```
 *
 * Two things make concurrent instances safe on one machine:
 * - Each instance runs in its own temporary root (a copy of the project's files), because
 *   Ponder keeps a vite cache in `<root>/.ponder` and writes `<root>/ponder-env.d.ts`.
 * - Ponder's RPC cache (`ponder_sync`) is one schema per database, keyed by chain id, and
 *   even with `disableCache` it reads logs back from there: a restarted anvil with a reused
 *   chain id would be served the previous chain's logs. Tests therefore give every anvil a
 *   fresh id from `uniqueChainId()`, and `stop()` deletes those chains' cached rows.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { cp, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import getPort from "get-port";
import pg from "pg";
import { INDEXER_ROOT_ENTRIES } from "@/core/indexer-inputs.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** What the indexer needs to know about one chain (the shape of QUASAR_CHAINS entries). */
export type PonderChain = {
  id: number;
  /** One URL, or several (fallbacks). */
  rpc: string | string[];
  registry: string;
  startBlock?: number;
  name?: string;
  /** The chain's request budget (requests per second over all its URLs). */
  maxRequestsPerSecond?: number;
  ethGetLogsBlockRange?: number;
  rpcBatchSize?: number;
};

/** Ponder's /status answer: per chain name, the chain id and the latest indexed block. */
export type PonderStatus = Record<
  string,
  { id: number; block: { number: number; timestamp: number } }
>;

export type StartPonderOptions = {
  databaseUrl: string;
  /** Postgres schema for the indexer's tables (ponder start --schema); at most 45 characters. */
  schema: string;
  chains: PonderChain[];
  /** HTTP port; a free one by default. */
  port?: number;
  /** How long to wait for /ready. Default 60 s. */
  readyTimeoutMs?: number;
  /** Wait for /ready before resolving. Default true. */
  waitForReady?: boolean;
  /** Extra environment (e.g. PONDER_LOG_LEVEL). */
  env?: Record<string, string>;
  /** Also write all of Ponder's output to this file (output() keeps only the tail). */
  logFile?: string;
  /** Options for Ponder's node itself (e.g. `--cpu-prof` for a bench's profile). */
  nodeArgs?: string[];
  /**
   * Copy every layer of the project into the root, not only the indexer's inputs: for tests
   * that edit files outside those inputs and check that Ponder's build id does not move.
   */
  wholeProject?: boolean;
  /**
   * Source that replaces `src/indexing/index.ts` in the root: a bench's baseline, Ponder
   * running other indexing functions over the same contracts.
   */
  indexingSource?: string;
};

export type PonderProcess = {
  url: string;
  /** The temporary root Ponder runs in (its own copy of the project's files). */
  root: string;
  port: number;
  schema: string;
  /** Process id of `ponder start` (the leader of its process group). */
  pid: number;
  /** The last ~64 KB of Ponder's stdout and stderr, for failure messages. */
  output(): string;
  /** Whether /ready answers 200 (historical backfill done). */
  isReady(): Promise<boolean>;
  waitForReady(timeoutMs?: number): Promise<void>;
  status(): Promise<PonderStatus>;
  /** Polls /status until `predicate` holds; returns that status. */
  waitForStatus(
    predicate: (status: PonderStatus) => boolean,
    timeoutMs?: number,
  ): Promise<PonderStatus>;
  /** Waits until Ponder's latest indexed block on `chainId` is at least `block`. */
  waitForBlock(chainId: number, block: bigint | number, timeoutMs?: number): Promise<void>;
  /** Resolves when the process exits (with its exit code, or null when killed by a signal). */
  exited: Promise<number | null>;
  /**
   * Kills this process and starts `ponder start` again on the same schema and root (a crash
   * and recovery); resolves with the new process, which then owns the root. Do not stop() this one after.
   */
  restart(): Promise<PonderProcess>;
  /** Kills the process group, waits for it, deletes the temp root and the chains' sync cache. Safe to call twice. */
  stop(): Promise<void>;
};

/** Chain ids handed out by uniqueChainId(): only these are purged from ponder_sync. */
const ownedChainIds = new Set<number>();

/**
 * Ponder's own duration histograms from its /metrics, summed per histogram and method (or
 * event): seconds over all calls (calls overlap, so a sum can exceed the wall time) and the
 * number of calls. Keys like `database_method:insert_blocks`, `rpc_request:eth_getLogs`.
 */
export async function ponderTimeSums(
  url: string,
): Promise<Record<string, { seconds: number; calls: number }>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const sums: Record<string, { seconds: number; calls: number }> = {};
  const wanted =
    /^(ponder_(?:rpc_request|database_method|indexing_function|historical_extract|historical_transform)_duration)_(sum|count)(?:\{([^}]*)\})? ([0-9.e+-]+)$/;
  for (const line of text.split("\n")) {
    const match = wanted.exec(line);
    if (!match) continue;
    const [, name, kind, labels = "", value] = match;
    const label = /(?:method|event)="([^"]*)"/.exec(labels)?.[1];
    const key = `${(name as string).replace(/^ponder_|_duration$/g, "")}${label ? `:${label}` : ""}`;
    const entry = sums[key] ?? { seconds: 0, calls: 0 };
    sums[key] = entry;
    // Ponder's durations are in milliseconds.
    if (kind === "sum") entry.seconds += Number(value) / 1000;
    else entry.calls += Number(value);
  }
  for (const entry of Object.values(sums)) entry.seconds = Number(entry.seconds.toFixed(2));
  return Object.fromEntries(Object.entries(sums).filter(([, entry]) => entry.calls > 0));
}

/**
 * A chain id no other test or run uses (see the module comment). Large enough to match no
 * real chain, small enough for anvil, Ponder and an int4 column.
 */
export function uniqueChainId(): number {
  for (;;) {
    const id = randomInt(1_000_000_000, 2_000_000_000);
    if (!ownedChainIds.has(id)) {
      ownedChainIds.add(id);
      return id;
    }
  }
}

const DEFAULT_READY_TIMEOUT_MS = 60_000;
const OUTPUT_LIMIT = 64 * 1024;
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is already gone
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort when a test process exits without stop(): only signals work in 'exit'.
  process.on("exit", () => {
    for (const child of live) killGroup(child, "SIGKILL");
  });
}

/** The project's folders that are not the indexer's inputs (see core/indexer-inputs.ts). */
const OTHER_LAYERS = ["core", "db", "backends", "reconciler", "api", "audit", "cli"];

/** Starts `ponder start` and (by default) waits for /ready. Throws with Ponder's output on failure. */
export async function startPonder(options: StartPonderOptions): Promise<PonderProcess> {
  installExitHook();
  if (options.schema.length > 45)
    throw new Error(`schema "${options.schema}" is longer than Ponder's 45 characters`);
  const root = await mkdtemp(join(tmpdir(), "quasar-ponder-"));
  try {
    const entries = options.wholeProject
      ? [...INDEXER_ROOT_ENTRIES, ...OTHER_LAYERS]
      : INDEXER_ROOT_ENTRIES;
    for (const entry of entries) {
      await cp(join(ROOT, entry), join(root, entry), {
        recursive: true,
        filter: (source) => !source.endsWith(".test.ts"),
      });
    }
    if (options.indexingSource !== undefined)
      await writeFile(join(root, "src", "indexing", "index.ts"), options.indexingSource);
    await symlink(join(ROOT, "node_modules"), join(root, "node_modules"));
  } catch (error) {
    await rm(root, { recursive: true, force: true });
    throw error;
  }
  return launch(options, root);
}

async function launch(options: StartPonderOptions, root: string): Promise<PonderProcess> {
  const port = options.port ?? (await getPort({ host: "127.0.0.1" }));
  const bin = join(ROOT, "node_modules", ".bin");
  const child = spawn(
    join(bin, "node"),
    [
      ...(options.nodeArgs ?? []),
      join(ROOT, "node_modules", "ponder", "dist", "esm", "bin", "ponder.js"),
      "start",
      "--root",
      root,
      "--schema",
      options.schema,
      "--port",
      String(port),
      "--hostname",
      "127.0.0.1",
      "--log-format",
      "json",
    ],
    {
      cwd: root,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH ?? ""}`,
        DATABASE_URL: options.databaseUrl,
        QUASAR_CHAINS: JSON.stringify(options.chains),
        PONDER_TELEMETRY_DISABLED: "true",
        ...options.env,
      },
    },
  );
  live.add(child);
  let output = "";
  const append = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-OUTPUT_LIMIT);
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  if (options.logFile !== undefined) {
    const file = createWriteStream(options.logFile, { flags: "a" });
    child.stdout?.pipe(file);
    child.stderr?.pipe(file);
  }
  let exitCode: number | null | undefined;
  const exited = once(child, "exit").then(([code]) => {
    exitCode = code as number | null;
    live.delete(child);
    return exitCode;
  });

  const url = `http://127.0.0.1:${port}`;
  const fail = (message: string): never => {
    throw new Error(
      `${message}\n--- ponder output (schema ${options.schema}) ---\n${output.slice(-8_000)}`,
    );
  };

  const get = async (path: string): Promise<Response | undefined> => {
    try {
      return await fetch(`${url}${path}`, { signal: AbortSignal.timeout(2_000) });
    } catch {
      return undefined;
    }
  };

  const poll = async <T>(
    what: string,
    attempt: () => Promise<T | undefined>,
    timeoutMs: number,
  ): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (exitCode !== undefined)
        fail(`ponder exited (code ${exitCode}) while waiting for ${what}`);
      const result = await attempt();
      if (result !== undefined) return result;
      if (Date.now() > deadline) fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  const status = async (): Promise<PonderStatus> => {
    const response = await get("/status");
    if (response?.ok !== true) fail(`/status answered ${response?.status ?? "nothing"}`);
    return (await (response as Response).json()) as PonderStatus;
  };

  let killed: Promise<void> | undefined;
  const kill = (): Promise<void> => {
    killed ??= (async () => {
      if (exitCode === undefined) {
        // SIGTERM to Ponder alone: its shutdown still talks to its esbuild child, and a
        // group-wide SIGTERM made it hang until the grace period ran out.
        child.kill("SIGTERM");
        const timer = setTimeout(() => killGroup(child, "SIGKILL"), 7_000);
        await exited;
        clearTimeout(timer);
      }
      // Ponder may leave workers in its group after the leader exits.
      killGroup(child, "SIGKILL");
    })();
    return killed;
  };

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      await kill();
      await rm(root, { recursive: true, force: true });
      await purgeSyncCache(
        options.databaseUrl,
        options.chains.map((chain) => chain.id).filter((id) => ownedChainIds.has(id)),
      );
    })();
    return stopped;
  };

  const ponder: PonderProcess = {
    url,
    root,
    port,
    schema: options.schema,
    pid: child.pid ?? -1,
    output: () => output,
    async isReady() {
      return (await get("/ready"))?.status === 200;
    },
    async waitForReady(timeoutMs = DEFAULT_READY_TIMEOUT_MS) {
      await poll(
        "/ready",
        async () => ((await get("/ready"))?.status === 200 ? true : undefined),
        timeoutMs,
      );
    },
    status,
    waitForStatus(predicate, timeoutMs = 30_000) {
      return poll(
        "a /status that satisfies the test",
        async () => {
          const response = await get("/status");
          if (response?.ok !== true) return undefined;
          const current = (await response.json()) as PonderStatus;
          return predicate(current) ? current : undefined;
        },
        timeoutMs,
      );
    },
    async waitForBlock(chainId, block, timeoutMs = 30_000) {
      const target = Number(block);
      await ponder.waitForStatus(
        (current) =>
          Object.values(current).some(
            (chain) => chain.id === chainId && chain.block.number >= target,
          ),
        timeoutMs,
      );
    },
    exited,
    async restart() {
      await kill();
      // Ponder unlocks its schema on a clean shutdown, but one interrupted mid-startup can
      // take over 5 s and be killed holding the lock; the next start would then wait 25 s
      // for the heartbeat to expire. The process is gone, so its lock is released here.
      await releaseSchemaLock(options.databaseUrl, options.schema);
      // Same root, so the same files and build id: Ponder resumes from its checkpoint.
      return launch({ ...options, port: undefined }, root);
    },
    stop,
  };

  if (options.waitForReady ?? true) {
    try {
      await ponder.waitForReady(options.readyTimeoutMs);
    } catch (error) {
      await stop();
      throw error;
    }
  }
  return ponder;
}

/** Marks a dead Ponder app's schema as unlocked (what its shutdown would have done). */
async function releaseSchemaLock(databaseUrl: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(
      `UPDATE "${schema}"._ponder_meta SET value = jsonb_set(value, '{is_locked}', to_jsonb(0)) WHERE key = 'app'`,
    );
  } finally {
    await client.end();
  }
}

/** Deletes Ponder's cached RPC data (ponder_sync) of the given chains. */
export async function purgeSyncCache(databaseUrl: string, chainIds: number[]): Promise<void> {
  if (chainIds.length === 0) return;
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ table_name: string }>(
      `SELECT table_name FROM information_schema.columns
       WHERE table_schema = 'ponder_sync' AND column_name = 'chain_id'`,
    );
    for (const { table_name } of rows) {
      await client.query(
        `DELETE FROM ponder_sync."${table_name}" WHERE chain_id = ANY($1::bigint[])`,
        [chainIds],
      );
    }
  } finally {
    await client.end();
  }
}
