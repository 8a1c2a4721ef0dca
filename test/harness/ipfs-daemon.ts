/**
 * A real js-ipfs daemon (the `ipfs` npm package, a Kubo RPC implementation) per test suite,
 * offline, on a free port, in a temporary repo.
 *
 * ```ts
 * const daemon = await startIpfsDaemon();
 * afterAll(() => daemon.destroy());
 * const [backend] = parseBackends([daemon.connectionString]);
 * ```
 *
 * The daemon runs under a small shell wrapper that kills it when our stdin pipe closes, so it
 * cannot outlive the test process even when the worker is killed with SIGKILL.
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import getPort from "get-port";
import { safeKill, TETHER_WRAPPER, type Tethered, track, untrack } from "./tethered.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const JSIPFS = join(ROOT, "node_modules", "ipfs", "src", "cli.js");
const READY_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

export type IpfsDaemon = {
  /** `http://127.0.0.1:<port>`: the RPC API root (commands under /api/v0). */
  apiUrl: string;
  /** `ipfs://127.0.0.1:<port>`: what Quasar is configured with. */
  connectionString: string;
  repoPath: string;
  port: number;
  /** Stops the daemon (SIGTERM, then SIGKILL after 10 s); keeps the repo. Idempotent. */
  stop(): Promise<void>;
  /** Starts it again on the same repo and port. */
  restart(): Promise<void>;
  /** Stops it and deletes the repo. */
  destroy(): Promise<void>;
  /** POSTs an RPC command directly to the daemon (for foreign pins and checks), answering the body text. */
  rpc(
    command: string,
    args?: Record<string, string>,
    body?: { field: string; bytes: Uint8Array },
  ): Promise<string>;
};

type Running = Tethered & { exited: Promise<unknown> };

/**
 * Initialises a fresh repo (`--profile test`), makes it offline and local, and starts the
 * daemon, on `options.port` when given (a test that starts it late, where something already
 * expects it), else on a free port.
 */
export async function startIpfsDaemon(options: { port?: number } = {}): Promise<IpfsDaemon> {
  const repoPath = await mkdtemp(join(tmpdir(), "quasar-jsipfs-"));
  const env = { ...process.env, IPFS_PATH: repoPath, IPFS_MONITORING: "" };
  await promisify(execFile)(process.execPath, [JSIPFS, "init", "--profile", "test"], {
    env,
    timeout: 60_000,
  });
  let port = options.port ?? (await getPort({ host: "127.0.0.1" }));
  await configure(repoPath, port);
  let current: Running | undefined;

  async function start(): Promise<void> {
    // A daemon killed hard leaves its lock behind; the repo is ours alone.
    await rm(join(repoPath, "repo.lock"), { recursive: true, force: true });
    const wrapper = spawn(
      "sh",
      // js-ipfs "preloads" every added or pinned CID over HTTPS to public nodes, even
      // offline, unless NODE_ENV is test (vitest's, not a bench's): never, here.
      [
        "-c",
        TETHER_WRAPPER,
        process.execPath,
        JSIPFS,
        "daemon",
        "--offline",
        "--enable-preload=false",
      ],
      {
        env,
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
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
      if (exited) throw new Error(`js-ipfs daemon exited during start:\n${output}`);
      if (await answers(`http://127.0.0.1:${port}`)) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await stop();
    throw new Error(`js-ipfs daemon did not answer within ${READY_TIMEOUT_MS} ms:\n${output}`);
  }

  async function stop(): Promise<void> {
    const proc = current;
    current = undefined;
    if (!proc) return;
    if (proc.pid) safeKill(proc.pid, "SIGTERM");
    const timer = setTimeout(() => {
      if (proc.pid) safeKill(proc.pid, "SIGKILL");
      proc.wrapper.kill("SIGKILL");
    }, STOP_TIMEOUT_MS);
    await proc.exited;
    clearTimeout(timer);
    proc.wrapper.stdin?.end();
  }

  // Another process may take the free port between getPort and the daemon's bind: retry.
  for (let attempt = 0; ; attempt++) {
    try {
      await start();
      break;
    } catch (error) {
      if (attempt >= 2 || options.port !== undefined) {
        await rm(repoPath, { recursive: true, force: true });
        throw error;
      }
      port = await getPort({ host: "127.0.0.1" });
      await configure(repoPath, port);
    }
  }

  const apiUrl = `http://127.0.0.1:${port}`;
  return {
    apiUrl,
    connectionString: `ipfs://127.0.0.1:${port}`,
    repoPath,
    port,
    stop,
    restart: start,
    async destroy() {
      await stop();
      await rm(repoPath, { recursive: true, force: true });
    },
    async rpc(command, args = {}, body) {
      const url = new URL(`${apiUrl}/api/v0/${command}`);
      for (const [key, value] of Object.entries(args)) url.searchParams.set(key, value);
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

/** Offline and local: no swarm, no bootstrap, no MDNS, the API on `port`, no gateway or gRPC. */
async function configure(repoPath: string, port: number): Promise<void> {
  const path = join(repoPath, "config");
  const config = JSON.parse(await readFile(path, "utf8")) as {
    Addresses: Record<string, unknown>;
    Bootstrap: unknown[];
    Discovery: { MDNS: { Enabled: boolean }; webRTCStar?: { Enabled: boolean } };
    Pubsub?: { Enabled: boolean };
  };
  config.Addresses.Swarm = [];
  config.Addresses.API = `/ip4/127.0.0.1/tcp/${port}`;
  config.Addresses.Gateway = "";
  config.Addresses.RPC = "";
  config.Addresses.Delegates = [];
  config.Bootstrap = [];
  config.Discovery.MDNS.Enabled = false;
  if (config.Discovery.webRTCStar) config.Discovery.webRTCStar.Enabled = false;
  if (config.Pubsub) config.Pubsub.Enabled = false;
  await writeFile(path, JSON.stringify(config, null, 2));
}

async function answers(apiUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${apiUrl}/api/v0/id`, {
      method: "POST",
      signal: AbortSignal.timeout(2_000),
    });
    await response.text();
    return response.ok;
  } catch {
    return false;
  }
}
