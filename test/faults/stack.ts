/**
 * The whole stack as `quasar start` runs it, for the fault suite: real PostgreSQL schemas
 * (reached through a freezable TCP proxy), anvil with interval mining and the contracts, a
 * real Kubo daemon plus an offline helia repository as backends, `quasar start --only
 * api,indexer` (the API and Ponder, supervised), and the reconciler as its own
 * `quasar reconciler` process, so the suite can SIGKILL it alone and start it again at once
 * (`quasar start`'s supervisor backs off exponentially: twenty crashes would take minutes).
 *
 * Everything binds 127.0.0.1. `stop()` stops what `startStack` started; a process exit hook
 * SIGKILLs the process groups it spawned if the test process dies first.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import getPort from "get-port";
import pg from "pg";
import type { Address } from "viem";
import { type Anvil, deployContracts, startAnvil } from "../harness/anvil.js";
import { type FreezableProxy, startProxy } from "../harness/freezable-proxy.js";
import { type KuboDaemon, startKubo } from "../harness/kubo.js";
import { type PonderStatus, purgeSyncCache, uniqueChainId } from "../harness/ponder.js";
import { createTestSchema, TEST_DATABASE_URL, type TestSchema } from "../harness/postgres.js";

const ROOT = join(import.meta.dirname, "..", "..");
const NODE = join(ROOT, "node_modules", ".bin", "node");
const QUASAR = join(ROOT, "bin", "quasar.js");

/** Keys of the two upload clients: the per-client upload cap counts them apart. */
export const API_KEYS = { fast: "fault-suite-fast-key", slow: "fault-suite-slow-key" } as const;

export type QuasarProcess = {
  child: ChildProcess;
  pid: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
};

export type FaultStack = {
  anvil: Anvil;
  kubo: KuboDaemon;
  proxy: FreezableProxy;
  chainId: number;
  registry: Address;
  storage: Address;
  indexerSchema: string;
  reconcilerSchema: string;
  /** The environment every part runs with (DATABASE_URL through the proxy). */
  env: Record<string, string>;
  apiUrl: string;
  indexerUrl: string;
  /** The reconciler's metrics server: /metrics, /health, /ready. */
  reconcilerUrl: string;
  /** `quasar start --only api,indexer`. */
  start: QuasarProcess;
  /** The reconciler running now, if any. */
  reconciler(): QuasarProcess | undefined;
  /** Starts `quasar reconciler`; resolves once its /health answers. */
  startReconciler(): Promise<QuasarProcess>;
  /** Starts `quasar reconciler` without waiting for it. */
  spawnReconciler(): QuasarProcess;
  /** SIGKILLs the reconciler and waits for it to be gone. */
  killReconciler(): Promise<void>;
  /**
   * Parts that exited on their own so far ("api exited (code 1)"): `quasar start` restarts the
   * API and the indexer, and the suite restarts the reconciler the same way (after 1 s), so
   * the stack recovers, but a crash on a routine fault is a bug of its own.
   */
  crashes(): string[];
  /** The last ~200 KB the stack's processes printed, for failure messages. */
  output(): string;
  /** The indexer's latest indexed block of the anvil chain, undefined when it does not answer. */
  indexedBlock(): Promise<number | undefined>;
  /** Pid of the anvil process (the harness keeps it behind its tether wrapper). */
  anvilPid(): Promise<number>;
  /** Runs `quasar <args>` with the stack's environment; resolves with its exit code and output. */
  cli(
    args: string[],
    timeoutMs?: number,
  ): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** A client on the shared server (not through the proxy), for checks. */
  query<R extends pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]>;
  stop(): Promise<void>;
};

const spawned = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const child of spawned) {
      // Each runs in its own process group (detached): take the group, Ponder included.
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // gone
        }
      }
    }
  });
}

async function httpOk(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await response.arrayBuffer();
    return response.ok;
  } catch {
    return false;
  }
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs: number,
  context: () => string = () => "",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}\n${context()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

export async function startStack(): Promise<FaultStack> {
  installExitHook();
  const cleanups: (() => Promise<unknown>)[] = [];
  let output = "";
  const append = (prefix: string) => (chunk: Buffer) => {
    output = (output + chunk.toString().replace(/^(?=.)/gm, prefix)).slice(-200_000);
  };
  const checks = new pg.Pool({ connectionString: TEST_DATABASE_URL, max: 2 });
  cleanups.push(() => checks.end());
  const query = async <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
    (await checks.query<R>(text, values)).rows;

  try {
    const chainId = uniqueChainId();
    const anvil = await startAnvil({ chainId, blockTime: 1 });
    cleanups.push(() => anvil.stop());
    const { registry, storage } = await deployContracts(anvil);
    const indexer: TestSchema = await createTestSchema("qfi");
    cleanups.push(async () => {
      await purgeSyncCache(indexer.databaseUrl, [chainId]).catch(() => {});
      await indexer.drop();
    });
    const reconcilerSchema: TestSchema = await createTestSchema("qfr");
    cleanups.push(() => reconcilerSchema.drop());
    const kubo = await startKubo();
    cleanups.push(() => kubo.destroy());
    const target = new URL(TEST_DATABASE_URL);
    const proxy = await startProxy({ host: target.hostname, port: Number(target.port || 5432) });
    cleanups.push(async () => {
      proxy.thaw();
      await proxy.close();
    });
    const viaProxy = new URL(TEST_DATABASE_URL);
    viaProxy.hostname = "127.0.0.1";
    viaProxy.port = String(proxy.port);
    const cwd = await mkdtemp(join(tmpdir(), "quasar-faults-"));
    cleanups.push(() => rm(cwd, { recursive: true, force: true }));

    const [apiPort, indexerPort, metricsPort] = [
      await getPort({ host: "127.0.0.1" }),
      await getPort({ host: "127.0.0.1" }),
      await getPort({ host: "127.0.0.1" }),
    ];
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      DATABASE_URL: viaProxy.toString(),
      QUASAR_INDEXER_SCHEMA: indexer.schema,
      QUASAR_RECONCILER_SCHEMA: reconcilerSchema.schema,
      QUASAR_CHAINS: JSON.stringify([{ id: chainId, rpc: anvil.rpcUrl, registry }]),
      // helia first: uploads are stored there, and Kubo gets them as CARs from it.
      QUASAR_BACKENDS: `helia://${join(cwd, "helia")}?offline=true,${kubo.connectionString}`,
      QUASAR_MIN_REPLICAS: "2",
      QUASAR_API_HOST: "127.0.0.1",
      QUASAR_API_PORT: String(apiPort),
      QUASAR_INDEXER_PORT: String(indexerPort),
      QUASAR_METRICS_PORT: String(metricsPort),
      QUASAR_API_KEYS: `${API_KEYS.fast},${API_KEYS.slow}`,
      QUASAR_RATE_LIMIT: "0",
      QUASAR_BODY_IDLE_TIMEOUT: "3s",
      QUASAR_DB_STATEMENT_TIMEOUT: "3s",
      QUASAR_DB_ACQUIRE_TIMEOUT: "3s",
      // Uploads stay desired for the whole run: every one must end up on both backends.
      QUASAR_PIN_TTL: "1h",
      QUASAR_RECONCILE_INTERVAL: "250ms",
      QUASAR_FULL_SWEEP_INTERVAL: "1h",
      QUASAR_RETRY_BASE: "200ms",
      QUASAR_RETRY_MAX: "2s",
      QUASAR_PIN_INACTIVITY_TIMEOUT: "5s",
      QUASAR_LOG_LEVEL: "warn",
    };

    const spawnQuasar = (args: string[], prefix: string): QuasarProcess => {
      const child = spawn(NODE, [QUASAR, ...args], {
        cwd,
        env: { ...env, QUASAR_SUPERVISED: "1" },
        // Its own group, so stopping it takes Ponder along; stdin open: a supervised part
        // exits when it closes (this process died).
        detached: true,
        stdio: ["pipe", "pipe", "pipe"],
      });
      spawned.add(child);
      child.stdout?.on("data", append(prefix));
      child.stderr?.on("data", append(prefix));
      let done = false;
      const exited = once(child, "exit").then(([code, signal]) => {
        done = true;
        spawned.delete(child);
        return { code: code as number | null, signal: signal as NodeJS.Signals | null };
      });
      return { child, pid: child.pid as number, exited, hasExited: () => done };
    };
    const stopProcess = async (proc: QuasarProcess | undefined, timeoutMs: number) => {
      if (!proc || proc.hasExited()) return;
      try {
        process.kill(-proc.pid, "SIGTERM");
      } catch {
        // gone
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-proc.pid, "SIGKILL");
        } catch {
          // gone
        }
      }, timeoutMs);
      await proc.exited;
      clearTimeout(timer);
      proc.child.stdin?.end();
    };

    // `quasar start` without QUASAR_SUPERVISED: it is the supervisor here.
    const startChild = spawn(NODE, [QUASAR, "start", "--only", "api,indexer"], {
      cwd,
      env,
      detached: true,
      stdio: ["pipe", "pipe", "pipe"],
    });
    spawned.add(startChild);
    startChild.stdout?.on("data", append(""));
    startChild.stderr?.on("data", append(""));
    let startDone = false;
    const start: QuasarProcess = {
      child: startChild,
      pid: startChild.pid as number,
      exited: once(startChild, "exit").then(([code, signal]) => {
        startDone = true;
        spawned.delete(startChild);
        return { code: code as number | null, signal: signal as NodeJS.Signals | null };
      }),
      hasExited: () => startDone,
    };
    // The supervisor's children run in their own groups; SIGTERM to it stops them in order.
    cleanups.push(async () => {
      if (start.hasExited()) return;
      startChild.kill("SIGTERM");
      const timer = setTimeout(() => {
        try {
          process.kill(-start.pid, "SIGKILL");
        } catch {
          // gone
        }
      }, 30_000);
      await start.exited;
      clearTimeout(timer);
    });

    let reconciler: QuasarProcess | undefined;
    let stopping = false;
    const expectedExits = new WeakSet<QuasarProcess>();
    const reconcilerCrashes: string[] = [];
    const spawnReconciler = (): QuasarProcess => {
      const proc = spawnQuasar(["reconciler"], "reconciler │ ");
      reconciler = proc;
      void proc.exited.then(({ code, signal }) => {
        if (stopping || expectedExits.has(proc)) return;
        reconcilerCrashes.push(`reconciler exited (${signal ?? `code ${code}`})`);
        // As `quasar start`'s supervisor does after a first crash.
        setTimeout(() => {
          if (!stopping && reconciler === proc) spawnReconciler();
        }, 1_000);
      });
      return proc;
    };
    cleanups.push(async () => {
      stopping = true;
      await stopProcess(reconciler, 15_000);
    });
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    const indexerUrl = `http://127.0.0.1:${indexerPort}`;
    const reconcilerUrl = `http://127.0.0.1:${metricsPort}`;
    const tail = () => output.slice(-6_000);
    const alive = async <T>(probe: () => Promise<T>) => {
      if (start.hasExited()) throw new Error(`quasar start exited\n${tail()}`);
      return probe();
    };

    await waitFor("the API", () => alive(() => httpOk(`${apiUrl}/healthz`)), 120_000, tail);
    await waitFor("the indexer", () => alive(() => httpOk(`${indexerUrl}/ready`)), 180_000, tail);

    const stack: FaultStack = {
      anvil,
      kubo,
      proxy,
      chainId,
      registry,
      storage,
      indexerSchema: indexer.schema,
      reconcilerSchema: reconcilerSchema.schema,
      env,
      apiUrl,
      indexerUrl,
      reconcilerUrl,
      start,
      reconciler: () => reconciler,
      spawnReconciler: () => spawnReconciler(),
      async startReconciler() {
        if (reconciler && !reconciler.hasExited()) throw new Error("a reconciler is running");
        const proc = spawnReconciler();
        await waitFor(
          "the reconciler's /health",
          async () => {
            if (proc.hasExited()) throw new Error(`the reconciler exited\n${tail()}`);
            return httpOk(`${reconcilerUrl}/health`);
          },
          60_000,
          tail,
        );
        return proc;
      },
      async killReconciler() {
        const proc = reconciler;
        if (!proc || proc.hasExited()) return;
        expectedExits.add(proc);
        process.kill(-proc.pid, "SIGKILL");
        await proc.exited;
        proc.child.stdin?.end();
      },
      crashes: () => [
        // With the part's last lines before it died: CI shows the failure, not the log file.
        ...[...output.matchAll(/^(api|indexer) +│ exited \(([^)]*)\)/gm)].map((match) => {
          const part = match[1] as string;
          const last = output
            .slice(0, match.index)
            .split("\n")
            .filter((line) => line.startsWith(`${part} `))
            .slice(-6)
            .map((line) => `\n    ${line.slice(0, 400)}`)
            .join("");
          return `${part} exited (${match[2]}); its last lines:${last}`;
        }),
        ...reconcilerCrashes,
      ],
      output: () => output,
      async indexedBlock() {
        try {
          const response = await fetch(`${indexerUrl}/status`, {
            signal: AbortSignal.timeout(2_000),
          });
          if (!response.ok) return undefined;
          const status = (await response.json()) as PonderStatus;
          return Object.values(status).find((entry) => entry.id === chainId)?.block.number;
        } catch {
          return undefined;
        }
      },
      async anvilPid() {
        for (const entry of await readdir("/proc")) {
          if (!/^\d+$/.test(entry)) continue;
          const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
          const args = cmdline.split("\0");
          if (
            args[0]?.endsWith("anvil") &&
            args[args.indexOf("--port") + 1] === String(anvil.port)
          ) {
            return Number(entry);
          }
        }
        throw new Error(`no anvil process on port ${anvil.port}`);
      },
      async cli(args, timeoutMs = 60_000) {
        const child = spawn(NODE, [QUASAR, ...args], {
          cwd,
          env,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout?.on("data", (chunk: Buffer) => {
          stdout += chunk.toString();
        });
        child.stderr?.on("data", (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
        const [code] = (await once(child, "exit")) as [number | null];
        clearTimeout(timer);
        return { code, stdout, stderr };
      },
      query,
      async stop() {
        for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
      },
    };
    return stack;
  } catch (error) {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
    throw error;
  }
}
