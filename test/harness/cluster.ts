/**
 * A real IPFS Cluster (ipfs-cluster-service 1.1.6, crdt consensus) for tests and benches,
 * every peer with its own Kubo, all inside a network namespace of the test's own
 * (netns.ts): Cluster always turns on UPnP / NAT-PMP port mapping, so it runs where nothing
 * it sends can leave the machine. Everything listens on the namespace's veth address; the
 * test process reaches the REST API, the Pinning Service API and each Kubo's RPC over the
 * veth pair.
 *
 * ```ts
 * const cluster = await startCluster({ peers: 2 });
 * afterAll(() => cluster.destroy());
 * const [backend] = parseBackends([cluster.connectionString({ "replication-min": "2" })]);
 * ```
 *
 * Peers: `listen_multiaddress` on the namespace address, mDNS off (`mdns_interval` 0), no
 * bootstrap (each peer knows the others through `peer_addresses`), `trusted_peers` = every
 * peer, short monitor intervals. Kubo runs online so the peers' daemons exchange blocks, but
 * with no bootstrap peers, no routing, no mDNS, no NAT port mapping, swarm on the namespace
 * address only. Each Cluster peer reaches its Kubo on the namespace's loopback (see
 * configureKubo). Daemons run under the tether wrapper (they die with the test process).
 *
 * QUASAR_DEBUG_DAEMON_LOGS=<dir> writes every daemon's whole output to a file there
 * (otherwise only its last 8,000 characters are kept, for a failed start's message).
 */
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, rmSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { createNetNamespace, type NetNamespace } from "./netns.js";
import { safeKill, TETHER_WRAPPER, type Tethered, track, untrack } from "./tethered.js";
import { toolPath } from "./tools.js";

const run = promisify(execFile);
const READY_TIMEOUT_MS = 90_000;

export type StartClusterOptions = {
  peers: 1 | 2;
  /** `api.restapi.basic_auth_credentials` (none by default). */
  basicAuth?: Record<string, string>;
  /** Extra environment for ipfs-cluster-service (e.g. GOLOG_LOG_LEVEL). */
  env?: Record<string, string>;
};

/** A stoppable daemon of the fixture. */
export type Daemon = {
  /** Pid of the running daemon, undefined while stopped. */
  pid(): number | undefined;
  /** SIGTERM, then SIGKILL after 10 s. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  /** Starts it again on the same repo and addresses, and waits until it answers. */
  start(): Promise<void>;
};

export type ClusterPeer = {
  index: number;
  /** The cluster peer's libp2p id. */
  peerId: string;
  /** `http://10.201.n.2:port` of this peer's REST API. */
  restUrl: string;
  /** `http://10.201.n.2:port` of this peer's Pinning Service API (`/pins` below it). */
  pinningServiceUrl: string;
  /** `http://10.201.n.2:port` of this peer's Kubo RPC API. */
  kuboApiUrl: string;
  service: Daemon;
  kubo: Daemon;
  /** POSTs a Kubo RPC command to this peer's Kubo, answering the body text. */
  kuboRpc(
    command: string,
    args?: Record<string, string>,
    body?: { field: string; bytes: Uint8Array },
  ): Promise<string>;
  /** A REST call on this peer, answering status and body text. */
  rest(
    method: "GET" | "POST" | "DELETE",
    path: string,
    query?: Record<string, string>,
  ): Promise<{ status: number; text: string }>;
};

export type TestCluster = {
  ns: NetNamespace;
  peers: readonly ClusterPeer[];
  /** `cluster+http://…` for peer `peer` (0 by default) with query parameters. */
  connectionString(query?: Record<string, string>, peer?: number): string;
  /** The Pinning Service API endpoint of a peer (issue 11's PSA backend tests use it). */
  pinningServiceUrl(peer?: number): string;
  /** Resolves once every peer sees every other, has its metrics and its Kubo connected to theirs. */
  converged(): Promise<void>;
  /** Kills every daemon, deletes the repos and the namespace. Idempotent. */
  destroy(): Promise<void>;
};

type Running = Tethered & { exited: Promise<unknown> };
const directories = new Set<string>();
let exitHookInstalled = false;

const ports = (index: number) => ({
  kuboApi: 5001 + index,
  kuboGateway: 8080 + index,
  kuboSwarm: 4001 + index,
  cluster: 9096 + 10 * index,
  rest: 9094 + 10 * index,
  proxy: 9095 + 10 * index,
  pinsvc: 9097 + 10 * index,
});

/** Starts a cluster of `peers` peers, each with its own Kubo, inside a fresh namespace. */
export async function startCluster(options: StartClusterOptions): Promise<TestCluster> {
  const ns = await createNetNamespace();
  const root = await mkdtemp(join(tmpdir(), "quasar-cluster-"));
  directories.add(root);
  installExitHook();
  const daemons: Daemon[] = [];
  const destroy = async () => {
    await Promise.all(daemons.map((d) => d.stop()));
    await ns.destroy();
    directories.delete(root);
    await rm(root, { recursive: true, force: true });
  };
  try {
    const addr = ns.address;
    const secret = randomHex(32);
    // Identities first: every peer's service.json names every peer.
    const identities: { path: string; peerId: string }[] = [];
    for (let i = 0; i < options.peers; i++) {
      const path = join(root, `cluster-${i}`);
      await run(
        toolPath("ipfs-cluster-service"),
        ["--config", path, "init", "--consensus", "crdt"],
        { timeout: 60_000, env: { ...process.env, IPFS_CLUSTER_PATH: path } },
      );
      const identity = JSON.parse(await readFile(join(path, "identity.json"), "utf8")) as {
        id: string;
      };
      identities.push({ path, peerId: identity.id });
    }
    const peers: ClusterPeer[] = [];
    for (let i = 0; i < options.peers; i++) {
      const p = ports(i);
      const kuboPath = join(root, `kubo-${i}`);
      const kuboEnv = { ...process.env, IPFS_PATH: kuboPath, IPFS_TELEMETRY: "off" };
      await run(toolPath("ipfs"), ["init", "--profile", "test"], { env: kuboEnv, timeout: 60_000 });
      await configureKubo(kuboPath, addr, p);
      const kuboApiUrl = `http://${addr}:${p.kuboApi}`;
      const kubo = daemon({
        ns,
        command: [toolPath("ipfs"), "daemon"],
        env: kuboEnv,
        ready: () => answers(`${kuboApiUrl}/api/v0/version`, "POST"),
        onBeforeStart: () => rm(join(kuboPath, "api"), { force: true }),
      });
      daemons.push(kubo);
      await kubo.start();

      const { path, peerId } = identities[i] as { path: string; peerId: string };
      await configureCluster(path, {
        addr,
        ports: p,
        secret,
        others: identities
          .map((other, j) => `/ip4/${addr}/tcp/${ports(j).cluster}/p2p/${other.peerId}`)
          .filter((_, j) => j !== i),
        trusted: identities.map((each) => each.peerId),
        basicAuth: options.basicAuth,
      });
      const restUrl = `http://${addr}:${p.rest}`;
      const authHeader = authHeaderOf(options);
      const service = daemon({
        ns,
        command: [toolPath("ipfs-cluster-service"), "--config", path, "daemon"],
        env: { ...process.env, IPFS_CLUSTER_PATH: path, ...options.env },
        ready: () => answers(`${restUrl}/id`, "GET", authHeader),
      });
      daemons.push(service);
      peers.push({
        index: i,
        peerId,
        restUrl,
        pinningServiceUrl: `http://${addr}:${p.pinsvc}`,
        kuboApiUrl,
        service,
        kubo,
        kuboRpc: (command, args, body) => kuboRpc(kuboApiUrl, command, args, body),
        async rest(method, path, query) {
          const url = new URL(`${restUrl}${path}`);
          for (const [key, value] of Object.entries(query ?? {})) url.searchParams.set(key, value);
          const response = await fetch(url, {
            method,
            headers: authHeader ? { authorization: authHeader } : {},
          });
          return { status: response.status, text: await response.text() };
        },
      });
    }
    // Started together: a crdt peer waits for the others it knows before it answers.
    await Promise.all(peers.map((peer) => peer.service.start()));
    const converged = async () => {
      await waitForPeers(peers, authHeaderOf(options));
      await connectKubos(peers, addr);
    };
    if (peers.length > 1) await converged();
    return {
      ns,
      peers,
      connectionString(query = {}, peer = 0) {
        const url = new URL((peers[peer] as ClusterPeer).restUrl);
        const search = new URLSearchParams(query).toString();
        return `cluster+http://${url.host}${search ? `?${search}` : ""}`;
      },
      pinningServiceUrl: (peer = 0) => (peers[peer] as ClusterPeer).pinningServiceUrl,
      converged,
      destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

function authHeaderOf(options: StartClusterOptions): string | undefined {
  if (!options.basicAuth) return undefined;
  const [user, password] = Object.entries(options.basicAuth)[0] ?? ["", ""];
  return `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
}

/**
 * Connects every peer's Kubo to every other's. Cluster does it once, a second after its Kubo
 * answers (`connect_swarms_delay`), and only to the peers it knows by then: a peer that joins
 * later (a slow start, a restart) is left unconnected, and with no routing here its Kubo could
 * never fetch what another peer holds.
 */
async function connectKubos(peers: readonly ClusterPeer[], addr: string): Promise<void> {
  const swarmAddresses = await Promise.all(
    peers.map(async (peer) => {
      const { ID } = JSON.parse(await peer.kuboRpc("id")) as { ID: string };
      return `/ip4/${addr}/tcp/${ports(peer.index).kuboSwarm}/p2p/${ID}`;
    }),
  );
  await Promise.all(
    peers.flatMap((peer, i) =>
      swarmAddresses.filter((_, j) => j !== i).map((arg) => peer.kuboRpc("swarm/connect", { arg })),
    ),
  );
}

/**
 * Waits until every peer lists every other peer (`GET /peers`) and holds a freespace metric
 * of each: the allocator places a pin only on peers it has metrics of.
 */
export async function waitForPeers(
  peers: readonly ClusterPeer[],
  auth: string | undefined,
): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    let all = true;
    for (const peer of peers) {
      for (const path of ["/peers", "/monitor/metrics/freespace"]) {
        const response = await fetch(`${peer.restUrl}${path}`, {
          headers: auth ? { authorization: auth } : {},
        }).catch(() => undefined);
        const text = response ? await response.text() : "";
        if (peers.some((other) => !text.includes(other.peerId))) all = false;
      }
    }
    if (all) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error("cluster peers did not see each other in time");
}

function daemon(params: {
  ns: NetNamespace;
  command: string[];
  env: NodeJS.ProcessEnv;
  ready: () => Promise<boolean>;
  onBeforeStart?: () => Promise<void>;
}): Daemon {
  let current: Running | undefined;
  let output = "";
  async function start(): Promise<void> {
    if (current) return;
    await params.onBeforeStart?.();
    const wrapper = spawn("sh", ["-c", TETHER_WRAPPER, ...params.ns.exec, ...params.command], {
      env: params.env,
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
    });
    const proc: Running = { wrapper, pid: undefined, exited: once(wrapper, "exit") };
    track(proc);
    let firstLine = true;
    let exited = false;
    const logFile = process.env.QUASAR_DEBUG_DAEMON_LOGS
      ? createWriteStream(
          join(
            process.env.QUASAR_DEBUG_DAEMON_LOGS,
            `${basename(params.command[0] ?? "daemon")}-${process.pid}-${Date.now()}.log`,
          ),
        )
      : undefined;
    wrapper.stdout?.on("data", (chunk: Buffer) => {
      logFile?.write(chunk);
      const text = chunk.toString();
      if (firstLine) {
        const pid = Number.parseInt(text, 10);
        if (Number.isSafeInteger(pid)) proc.pid = pid;
        firstLine = false;
      }
      output = (output + text).slice(-8000);
    });
    wrapper.stderr?.on("data", (chunk: Buffer) => {
      logFile?.write(chunk);
      output = (output + chunk.toString()).slice(-8000);
    });
    void proc.exited.then(() => {
      logFile?.end();
      exited = true;
      untrack(proc);
      if (current === proc) current = undefined;
    });
    current = proc;
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`${params.command[0]} exited during start:\n${output}`);
      if (await params.ready()) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await halt("SIGKILL");
    throw new Error(`${params.command[0]} did not answer in time:\n${output}`);
  }
  async function halt(signal: NodeJS.Signals): Promise<void> {
    const proc = current;
    current = undefined;
    if (!proc) return;
    if (proc.pid) safeKill(proc.pid, signal);
    const timer = setTimeout(() => {
      if (proc.pid) safeKill(proc.pid, "SIGKILL");
      if (proc.wrapper.pid) safeKill(-proc.wrapper.pid, "SIGKILL");
    }, 10_000);
    await proc.exited;
    clearTimeout(timer);
    proc.wrapper.stdin?.end();
  }
  return {
    pid: () => current?.pid,
    start,
    stop: () => halt("SIGTERM"),
    kill: () => halt("SIGKILL"),
  };
}

async function configureKubo(
  repo: string,
  addr: string,
  p: ReturnType<typeof ports>,
): Promise<void> {
  const path = join(repo, "config");
  const config = JSON.parse(await readFile(path, "utf8")) as Record<
    string,
    Record<string, unknown>
  > & {
    Bootstrap: unknown;
  };
  config.Addresses = {
    ...config.Addresses,
    // The namespace address serves the tests; loopback serves this peer's Cluster, as in a
    // co-located deployment (Cluster's default). Cluster's connector keeps 2 idle connections
    // and opens one per request beyond that: on a non-loopback address each closed one holds
    // an ephemeral port in TIME_WAIT for 60 s, and at a few hundred pins/s connect() then scans
    // an almost full port range (and fails once it is full). Loopback connections may reuse
    // TIME_WAIT ports (net.ipv4.tcp_tw_reuse = 2, the kernel's default).
    API: [`/ip4/${addr}/tcp/${p.kuboApi}`, `/ip4/127.0.0.1/tcp/${p.kuboApi}`],
    Gateway: `/ip4/127.0.0.1/tcp/${p.kuboGateway}`,
    Swarm: [`/ip4/${addr}/tcp/${p.kuboSwarm}`],
    Announce: [],
    AppendAnnounce: [],
    NoAnnounce: [],
  };
  config.Bootstrap = [];
  config.Discovery = { MDNS: { Enabled: false } };
  // No DHT, no delegated routers: blocks move only between the peers Cluster connects.
  config.Routing = { ...config.Routing, Type: "none", DelegatedRouters: [] };
  config.AutoConf = { Enabled: false };
  config.AutoNAT = { ServiceMode: "disabled" };
  config.Swarm = {
    ...config.Swarm,
    DisableNatPortMap: true,
    RelayClient: { Enabled: false },
    RelayService: { Enabled: false },
    Transports: {
      Network: { QUIC: false, WebTransport: false, WebRTCDirect: false, Websocket: false },
    },
  };
  await writeFile(path, JSON.stringify(config, null, 2));
}

async function configureCluster(
  path: string,
  params: {
    addr: string;
    ports: ReturnType<typeof ports>;
    secret: string;
    others: string[];
    trusted: string[];
    basicAuth: Record<string, string> | undefined;
  },
): Promise<void> {
  const file = join(path, "service.json");
  // biome-ignore lint/suspicious/noExplicitAny: service.json is edited as free-form JSON
  const config = JSON.parse(await readFile(file, "utf8")) as any;
  const { addr, ports: p } = params;
  Object.assign(config.cluster, {
    secret: params.secret,
    listen_multiaddress: [`/ip4/${addr}/tcp/${p.cluster}`],
    mdns_interval: "0s",
    peer_addresses: params.others,
    monitor_ping_interval: "2s",
    peer_watch_interval: "2s",
    enable_relay_hop: false,
    peername: `quasar-test-${params.ports.rest}`,
  });
  config.consensus.crdt.trusted_peers = params.trusted;
  config.api.restapi.http_listen_multiaddress = `/ip4/${addr}/tcp/${p.rest}`;
  config.api.restapi.basic_auth_credentials = params.basicAuth ?? null;
  config.api.pinsvcapi.http_listen_multiaddress = `/ip4/${addr}/tcp/${p.pinsvc}`;
  config.api.pinsvcapi.basic_auth_credentials = params.basicAuth ?? null;
  config.api.ipfsproxy.listen_multiaddress = `/ip4/${addr}/tcp/${p.proxy}`;
  config.api.ipfsproxy.node_multiaddress = `/ip4/127.0.0.1/tcp/${p.kuboApi}`;
  config.ipfs_connector.ipfshttp.node_multiaddress = `/ip4/127.0.0.1/tcp/${p.kuboApi}`;
  config.ipfs_connector.ipfshttp.connect_swarms_delay = "1s";
  if (config.monitor?.pubsubmon) config.monitor.pubsubmon.check_interval = "2s";
  if (config.pin_tracker?.stateless) config.pin_tracker.stateless.concurrent_pins = 32;
  await writeFile(file, JSON.stringify(config, null, 2));
}

async function answers(url: string, method: string, auth?: string): Promise<boolean> {
  try {
    const response = await fetch(url, {
      method,
      headers: auth ? { authorization: auth } : {},
      signal: AbortSignal.timeout(2_000),
    });
    await response.text();
    return response.ok;
  } catch {
    return false;
  }
}

async function kuboRpc(
  apiUrl: string,
  command: string,
  args: Record<string, string> = {},
  body?: { field: string; bytes: Uint8Array },
): Promise<string> {
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
}

function randomHex(bytes: number): string {
  return Buffer.from(crypto.getRandomValues(new Uint8Array(bytes))).toString("hex");
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const dir of directories) rmSync(dir, { recursive: true, force: true });
  });
}
