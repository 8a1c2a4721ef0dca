/**
 * A real Kubo daemon (the `ipfs` binary scripts/tools.sh builds) per test suite or bench:
 * `ipfs init --profile test` in a fresh temporary repo, `ipfs daemon --offline`, everything
 * on loopback.
 *
 * ```ts
 * const kubo = await startKubo();
 * afterAll(() => kubo.destroy());
 * const [backend] = parseBackends([kubo.connectionString]);
 * ```
 *
 * Nothing it runs reaches beyond the machine: the test profile binds the API, gateway and
 * swarm to 127.0.0.1 (port 0) with no bootstrap peers and no mDNS, `--offline` starts no
 * networking at all, and telemetry is off. The API's bound port is read from `$IPFS_PATH/api`
 * and written back into the config, so `restart()` comes back on the same port.
 *
 * The daemon runs under a small shell wrapper (its own process group) that kills it when our
 * stdin pipe closes, so it cannot outlive the test process even when the worker is killed
 * with SIGKILL; a process exit hook kills the group and deletes the repo.
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { rmSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { safeKill, TETHER_WRAPPER, type Tethered, track, untrack } from "./tethered.js";
import { toolPath } from "./tools.js";

const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

export type StartKuboOptions = {
  /**
   * CPU list for `taskset -c` (e.g. "1"): the daemon runs on those cores only. When taskset
   * is missing or refuses, the daemon runs unpinned and `isolated` is false.
   */
  cpus?: string;
  /** Extra environment for the daemon (e.g. GOLOG_LOG_LEVEL). */
  env?: Record<string, string>;
};

export type KuboDaemon = {
  /** `http://127.0.0.1:<port>`: the RPC API root (commands under /api/v0). */
  apiUrl: string;
  /** `ipfs://127.0.0.1:<port>`: what Quasar is configured with. */
  connectionString: string;
  repoPath: string;
  port: number;
  /** Kubo's version as `version` answers it (e.g. "0.43.1"). */
  version: string;
  /** True when the daemon runs pinned to `options.cpus`. */
  isolated: boolean;
  /** Pid of the running `ipfs daemon` process, undefined while stopped. */
  pid(): number | undefined;
  /** Stops the daemon (SIGTERM, then SIGKILL after 10 s); keeps the repo. Idempotent. */
  stop(): Promise<void>;
  /** Kills the daemon with SIGKILL (a crash: no graceful shutdown); keeps the repo. */
  kill(): Promise<void>;
  /** Starts it again on the same repo and port. */
  restart(): Promise<void>;
  /** Stops it and deletes the repo. */
  destroy(): Promise<void>;
  /** POSTs an RPC command directly to the daemon (for foreign pins and checks), answering the body text. */
  rpc(
    command: string,
    args?: Record<string, string | readonly string[]>,
    body?: { field: string; bytes: Uint8Array },
  ): Promise<string>;
};

type Running = Tethered & { exited: Promise<unknown> };

const repos = new Set<string>();
let exitHookInstalled = false;

/** Initialises a fresh repo (`--profile test`, offline, loopback) and starts the daemon. */
export async function startKubo(options: StartKuboOptions = {}): Promise<KuboDaemon> {
  const ipfs = toolPath("ipfs");
  const repoPath = await mkdtemp(join(tmpdir(), "quasar-kubo-"));
  repos.add(repoPath);
  installExitHook();
  const env = {
    ...process.env,
    ...options.env,
    IPFS_PATH: repoPath,
    IPFS_TELEMETRY: "off",
  };
  try {
    await promisify(execFile)(ipfs, ["init", "--profile", "test"], {
      env,
      timeout: 60_000,
    });
    await configure(repoPath, undefined);
  } catch (error) {
    repos.delete(repoPath);
    await rm(repoPath, { recursive: true, force: true });
    throw error;
  }

  const isolated = options.cpus !== undefined && (await tasksetWorks(options.cpus));
  const command = isolated ? ["taskset", "-c", options.cpus as string, ipfs] : [ipfs];
  let port = 0;
  let current: Running | undefined;

  async function start(): Promise<void> {
    // A daemon killed hard leaves its api file behind: only a fresh one says where it listens.
    await rm(join(repoPath, "api"), { force: true });
    const wrapper = spawn("sh", ["-c", TETHER_WRAPPER, ...command, "daemon", "--offline"], {
      env,
      stdio: ["pipe", "pipe", "pipe"],
      // Its own process group, so the exit hook can take the wrapper and daemon down together.
      detached: true,
    });
    const proc: Running = { wrapper, pid: undefined, exited: once(wrapper, "exit") };
    track(proc);
    let output = "";
    let firstLine = true;
    wrapper.stdout?.on("data", (chunk: Buffer) => {
      const text = chunk.toString();
      if (firstLine) {
        const pid = Number.parseInt(text, 10);
        if (Number.isSafeInteger(pid)) proc.pid = pid;
        firstLine = false;
      }
      output = (output + text).slice(-4000);
    });
    wrapper.stderr?.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    });
    let exited = false;
    void proc.exited.then(() => {
      exited = true;
      untrack(proc);
    });
    current = proc;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`Kubo daemon exited during start:\n${output}`);
      const bound = await boundPort(repoPath);
      if (bound !== undefined && (await answers(`http://127.0.0.1:${bound}`))) {
        if (port === 0) {
          port = bound;
          // Restarts come back on the same port.
          await configure(repoPath, port);
        }
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await stop();
    throw new Error(`Kubo daemon did not answer within ${READY_TIMEOUT_MS} ms:\n${output}`);
  }

  async function halt(signal: NodeJS.Signals): Promise<void> {
    const proc = current;
    current = undefined;
    if (!proc) return;
    if (proc.pid) safeKill(proc.pid, signal);
    const timer = setTimeout(() => {
      if (proc.pid) safeKill(proc.pid, "SIGKILL");
      killGroup(proc);
    }, STOP_TIMEOUT_MS);
    await proc.exited;
    clearTimeout(timer);
    proc.wrapper.stdin?.end();
  }
  const stop = () => halt("SIGTERM");

  try {
    await start();
  } catch (error) {
    repos.delete(repoPath);
    await rm(repoPath, { recursive: true, force: true });
    throw error;
  }

  const apiUrl = `http://127.0.0.1:${port}`;
  const version = await versionOf(apiUrl);
  return {
    apiUrl,
    connectionString: `ipfs://127.0.0.1:${port}`,
    repoPath,
    port,
    version,
    isolated,
    pid: () => current?.pid,
    stop,
    kill: () => halt("SIGKILL"),
    restart: start,
    async destroy() {
      await stop();
      repos.delete(repoPath);
      await rm(repoPath, { recursive: true, force: true });
    },
    async rpc(command, args = {}, body) {
      const url = new URL(`${apiUrl}/api/v0/${command}`);
      for (const [key, value] of Object.entries(args)) {
        if (typeof value === "string") url.searchParams.set(key, value);
        else for (const item of value) url.searchParams.append(key, item);
      }
      let form: FormData | undefined;
      if (body) {
        form = new FormData();
        form.append(body.field, new Blob([new Uint8Array(body.bytes)]), "file");
      }
      const response = await fetch(url, { method: "POST", body: form });
      const text = await response.text();
      if (!response.ok) throw new Error(`${command} answered ${response.status}: ${text}`);
      return text;
    },
  };
}

/**
 * Loopback only and nothing outward, on top of the test profile (which already binds
 * 127.0.0.1, port 0, and has no bootstrap peers or mDNS): no swarm listener or announcements,
 * no delegated routers or autoconf (telemetry is off through IPFS_TELEMETRY). `apiPort` fixes the API port for restarts.
 */
async function configure(repoPath: string, apiPort: number | undefined): Promise<void> {
  const path = join(repoPath, "config");
  const config = JSON.parse(await readFile(path, "utf8")) as Record<string, unknown> & {
    Addresses: Record<string, unknown>;
    Bootstrap: unknown[];
    Discovery: { MDNS: { Enabled: boolean } };
    Routing: Record<string, unknown>;
  };
  config.Addresses.API = `/ip4/127.0.0.1/tcp/${apiPort ?? 0}`;
  config.Addresses.Gateway = "/ip4/127.0.0.1/tcp/0";
  config.Addresses.Swarm = [];
  config.Addresses.Announce = [];
  config.Bootstrap = [];
  config.Discovery.MDNS.Enabled = false;
  config.Routing.DelegatedRouters = [];
  // Kubo would otherwise fetch its bootstrap and router lists over HTTPS (the test profile
  // turns it off already; stated here so no later profile change can turn it on).
  config.AutoConf = { Enabled: false };
  await writeFile(path, JSON.stringify(config, null, 2));
}

/** The port in `$IPFS_PATH/api` (`/ip4/127.0.0.1/tcp/<port>`), written once the API listens. */
async function boundPort(repoPath: string): Promise<number | undefined> {
  try {
    const text = await readFile(join(repoPath, "api"), "utf8");
    const match = /^\/ip4\/127\.0\.0\.1\/tcp\/(\d+)\s*$/.exec(text);
    if (!match) throw new Error(`Kubo's api file names a non-loopback address: ${text}`);
    return Number(match[1]);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

async function answers(apiUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${apiUrl}/api/v0/version`, {
      method: "POST",
      signal: AbortSignal.timeout(2_000),
    });
    await response.text();
    return response.ok;
  } catch {
    return false;
  }
}

async function versionOf(apiUrl: string): Promise<string> {
  const response = await fetch(`${apiUrl}/api/v0/version`, { method: "POST" });
  const answer = (await response.json()) as { Version?: unknown };
  return typeof answer.Version === "string" ? answer.Version : "unknown";
}

/** Whether `taskset -c cpus` can run a command here (installed, and the cores exist). */
async function tasksetWorks(cpus: string): Promise<boolean> {
  try {
    await promisify(execFile)("taskset", ["-c", cpus, "true"], { timeout: 5_000 });
    return true;
  } catch {
    return false;
  }
}

function killGroup(proc: Tethered): void {
  if (proc.wrapper.pid) safeKill(-proc.wrapper.pid, "SIGKILL");
  proc.wrapper.kill("SIGKILL");
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // tethered.ts kills the daemons themselves; what is left here is their repos ('exit'
  // handlers run synchronously, so rmSync). A daemon SIGKILLed a moment ago may still hold
  // files open, which does not stop their removal on Linux.
  process.on("exit", () => {
    for (const repo of repos) rmSync(repo, { recursive: true, force: true });
  });
}

/** The names the suites written for the earlier js-ipfs harness use. */
export const startIpfsDaemon = startKubo;
export type IpfsDaemon = KuboDaemon;
