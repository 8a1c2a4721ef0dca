/**
 * `npm run bench:latency [-- --pins 200 --uploads 200 --ttl 20s]`
 *
 * What the dashboard promises, measured on the dev stack: `quasar dev` as a user runs it
 * (anvil, one block a second; the indexer, the reconciler and the API as supervised children)
 * on the shared PostgreSQL (fresh schemas, dropped after) with a real Kubo daemon as its one
 * backend (`--backend ipfs://…`), so "pinned on the backend" is read from the backend itself
 * (`pin/ls`, polled every 100 ms) and not from Quasar's ledger.
 *
 * (a) `--pins` PinHash events (10 CIDs per transaction, one transaction after another, so
 *     they spread over blocks), each of content already stored unpinned on the Kubo node.
 *     Per CID: from the block that makes its PinHash final (block + Ponder's finality depth,
 *     30 on anvil; its wall-clock arrival seen by polling eth_blockNumber every 100 ms) to the
 *     CID's appearance in `pin/ls`. Quasar pins pending PinHashes already, so this is often
 *     negative (pinned before final); `minedToPinned*` is from the PinHash's own block.
 * (b) `--uploads` uploads through the API with QUASAR_PIN_TTL=`--ttl`: per upload, from its
 *     expiry (optimistic_pin.expires_at) to its disappearance from `pin/ls`.
 *
 * Goals (issue 12): (a) p99 ≤ one reconcile interval + the pin's own time (`pinP99Ms`: direct
 * `pin/add` of the same kind of content on the same node); (b) p99 ≤ one reconcile interval.
 *
 * Last line:
 * {"bench":"latency","pinHashes":N,"finalToPinnedP50Ms":…,"finalToPinnedP99Ms":…,
 *  "pinnedBeforeFinal":K,"minedToPinnedP50Ms":…,"minedToPinnedP99Ms":…,"pinP99Ms":…,"uploads":M,
 *  "expiryToUnpinP50Ms":…,"expiryToUnpinP99Ms":…,"reconcileIntervalMs":…,"finalityDepth":30,
 *  "cores":2,"loadAvg1m":…,"goalA":bool,"goalB":bool}
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import { CID } from "multiformats/cid";
import pg from "pg";
import { type Address, getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { ponderFinalityDepth } from "@/audit/finality.js";
import { connectChain, pinCids } from "@/cli/chain-ops.js";
import { ANVIL_DEFAULT_KEY } from "@/cli/signer.js";
import { parseDurationMs } from "@/core/config/duration.js";
import { startKubo } from "@/test/harness/kubo.js";
import { TEST_DATABASE_URL } from "@/test/harness/postgres.js";
import { percentile } from "./percentile.js";

const { values } = parseArgs({
  options: {
    pins: { type: "string", default: "200" },
    uploads: { type: "string", default: "200" },
    ttl: { type: "string", default: "20s" },
    "reconcile-interval": { type: "string", default: "2s" },
  },
});
const PINS = positive("pins", values.pins);
const UPLOADS = positive("uploads", values.uploads);
const TTL = values.ttl as string;
const INTERVAL = values["reconcile-interval"] as string;
const INTERVAL_MS = parseDurationMs(INTERVAL) ?? Number.NaN;
const PER_TRANSACTION = 10;
const CHAIN_ID = 31337;
const FINALITY = ponderFinalityDepth(CHAIN_ID);

function positive(name: string, raw: string | undefined): number {
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return value;
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);
const v1 = (cid: string) => CID.parse(cid).toV1().toString();

/** Nearest-rank percentile, in whole milliseconds. */
const percentileMs = (values: readonly number[], p: number) => Math.round(percentile(values, p));

const ROOT = join(import.meta.dirname, "..");
const NODE = join(ROOT, "node_modules", ".bin", "node");
const QUASAR = join(ROOT, "bin", "quasar.js");

const suffix = `${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
const indexerSchema = `bench_lat_idx_${suffix}`;
const reconcilerSchema = `bench_lat_${suffix}`;
const cwd = await mkdtemp(join(tmpdir(), "quasar-bench-latency-"));
await chmod(cwd, 0o755);
const kubo = await startKubo();
let dev: ChildProcess | undefined;
let devStderr = "";
const stopPolling = new AbortController();

try {
  log(`kubo ${kubo.version} at ${kubo.apiUrl}; quasar dev in ${cwd}`);
  dev = spawn(
    NODE,
    [
      QUASAR,
      "dev",
      "--backend",
      kubo.connectionString,
      "--pin-ttl",
      TTL,
      "--reconcile-interval",
      INTERVAL,
      "--rate-limit",
      "0",
      "--max-uploads-per-client",
      "0",
      "--metrics-port",
      "0",
    ],
    {
      cwd,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        DATABASE_URL: TEST_DATABASE_URL,
        QUASAR_INDEXER_SCHEMA: indexerSchema,
        QUASAR_RECONCILER_SCHEMA: reconcilerSchema,
        NO_COLOR: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let devStdout = "";
  dev.stdout?.on("data", (chunk: Buffer) => {
    devStdout += chunk.toString();
  });
  dev.stderr?.on("data", (chunk: Buffer) => {
    devStderr = (devStderr + chunk.toString()).slice(-20_000);
  });
  const startedAt = Date.now();
  while (!devStdout.includes("\nready\n")) {
    if (dev.exitCode !== null) throw new Error(`quasar dev exited\n${devStderr}`);
    if (Date.now() - startedAt > 300_000) throw new Error(`quasar dev not ready\n${devStderr}`);
    await sleep(250);
  }
  log(`quasar dev ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  const env = Object.fromEntries(
    (await readFile(join(cwd, ".quasar", "dev.env"), "utf8"))
      .split("\n")
      .filter((line) => line.includes("=") && !line.startsWith("#"))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  ) as Record<string, string>;
  const api = `http://127.0.0.1:${env.QUASAR_API_PORT}`;
  const rpc = (JSON.parse(env.QUASAR_CHAINS as string) as { rpc: string }[])[0]?.rpc as string;
  const storage = getAddress(env.QUASAR_DEV_STORAGE as string) as Address;
  const clients = await connectChain(rpc, privateKeyToAccount(ANVIL_DEFAULT_KEY), CHAIN_ID);

  // Wall-clock arrival of every block, and of every CID on the backend's pin list.
  const blockSeenAt = new Map<bigint, number>();
  const pinnedAt = new Map<string, number>();
  const unpinnedAt = new Map<string, number>();
  const pollBlocks = (async () => {
    while (!stopPolling.signal.aborted) {
      try {
        const head = await clients.publicClient.getBlockNumber({ cacheTime: 0 });
        const at = Date.now();
        for (let block = head; block >= 0n && !blockSeenAt.has(block); block--)
          blockSeenAt.set(block, at);
      } catch {
        // a missed poll only widens the next one's window
      }
      await sleep(100);
    }
  })();
  const pollPins = (async () => {
    while (!stopPolling.signal.aborted) {
      try {
        const body = JSON.parse(await kubo.rpc("pin/ls", { type: "recursive" })) as {
          Keys: Record<string, unknown>;
        };
        const at = Date.now();
        const now = new Set(Object.keys(body.Keys).map(v1));
        for (const cid of now) if (!pinnedAt.has(cid)) pinnedAt.set(cid, at);
        for (const cid of pinnedAt.keys())
          if (!now.has(cid) && !unpinnedAt.has(cid)) unpinnedAt.set(cid, at);
      } catch {
        // idem
      }
      await sleep(100);
    }
  })();

  // The pin's own time on this node: a direct pin/add of content stored unpinned.
  const direct: number[] = [];
  for (let i = 0; i < 20; i++) {
    const added = JSON.parse(
      await kubo.rpc("add", { pin: "false" }, { field: "file", bytes: randomBytes(1024) }),
    ) as { Hash: string };
    const started = performance.now();
    await kubo.rpc("pin/add", { arg: added.Hash });
    direct.push(performance.now() - started);
    await kubo.rpc("pin/rm", { arg: added.Hash });
  }
  const pinP99Ms = percentileMs(direct, 99);

  // (a) PinHash of content already on the node, unpinned.
  const pinHashCids: string[] = [];
  for (let i = 0; i < PINS; i++) {
    const added = JSON.parse(
      await kubo.rpc("add", { pin: "false" }, { field: "file", bytes: randomBytes(1024) }),
    ) as { Hash: string };
    pinHashCids.push(added.Hash);
  }
  const blockOf = new Map<string, bigint>();
  log(`emitting ${PINS} PinHash (${PER_TRANSACTION} per transaction)`);
  for (let i = 0; i < pinHashCids.length; i += PER_TRANSACTION) {
    const cids = pinHashCids.slice(i, i + PER_TRANSACTION);
    const hash = await pinCids(clients, storage, cids);
    const receipt = await clients.publicClient.getTransactionReceipt({ hash });
    for (const cid of cids) blockOf.set(v1(cid), receipt.blockNumber);
  }
  let lastBlock = 0n;
  for (const block of blockOf.values()) if (block > lastBlock) lastBlock = block;
  log(`waiting for block ${lastBlock + BigInt(FINALITY)} (the last PinHash final) and the pins`);
  const deadlineA = Date.now() + 180_000;
  while (
    ![...blockOf.keys()].every((cid) => pinnedAt.has(cid)) ||
    !blockSeenAt.has(lastBlock + BigInt(FINALITY))
  ) {
    if (Date.now() > deadlineA) {
      const missing = [...blockOf.keys()].filter((cid) => !pinnedAt.has(cid)).length;
      throw new Error(`(a): ${missing} CIDs never pinned\n${devStderr.slice(-5000)}`);
    }
    await sleep(250);
  }
  const finalToPinned: number[] = [];
  const minedToPinned: number[] = [];
  for (const [cid, block] of blockOf) {
    const pinned = pinnedAt.get(cid) as number;
    finalToPinned.push(pinned - (blockSeenAt.get(block + BigInt(FINALITY)) as number));
    minedToPinned.push(pinned - (blockSeenAt.get(block) as number));
  }

  // (b) uploads through the API, each expiring TTL after it.
  log(`uploading ${UPLOADS} files through the API (QUASAR_PIN_TTL=${TTL})`);
  const uploaded: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      while (next < UPLOADS) {
        next++;
        const form = new FormData();
        form.append("entry", new Blob([randomBytes(1024)]), "file");
        const response = await fetch(`${api}/api/v0/add`, { method: "POST", body: form });
        if (response.status !== 201)
          throw new Error(`upload answered ${response.status}: ${await response.text()}`);
        uploaded.push(v1((await response.text()).trim()));
      }
    }),
  );
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  const expiries = new Map<string, number>();
  try {
    const { rows } = await client.query<{ cid: string; expires_at: Date }>(
      `select cid, max(expires_at) as expires_at from "${reconcilerSchema}".optimistic_pin group by cid`,
    );
    for (const row of rows) expiries.set(v1(row.cid), row.expires_at.getTime());
  } finally {
    await client.end();
  }
  const lastExpiry = Math.max(...uploaded.map((cid) => expiries.get(cid) ?? 0));
  log(
    `waiting for the uploads to expire and be unpinned (last expiry in ${lastExpiry - Date.now()} ms)`,
  );
  const deadlineB = lastExpiry + 120_000;
  while (!uploaded.every((cid) => unpinnedAt.has(cid))) {
    if (Date.now() > deadlineB) {
      const left = uploaded.filter((cid) => !unpinnedAt.has(cid)).length;
      throw new Error(`(b): ${left} uploads never unpinned\n${devStderr.slice(-5000)}`);
    }
    await sleep(250);
  }
  const expiryToUnpin = uploaded.map(
    (cid) => (unpinnedAt.get(cid) as number) - (expiries.get(cid) as number),
  );
  stopPolling.abort();
  await Promise.all([pollBlocks, pollPins]);

  const result = {
    bench: "latency",
    pinHashes: finalToPinned.length,
    finalToPinnedP50Ms: percentileMs(finalToPinned, 50),
    finalToPinnedP99Ms: percentileMs(finalToPinned, 99),
    pinnedBeforeFinal: finalToPinned.filter((ms) => ms <= 0).length,
    minedToPinnedP50Ms: percentileMs(minedToPinned, 50),
    minedToPinnedP99Ms: percentileMs(minedToPinned, 99),
    pinP99Ms,
    uploads: expiryToUnpin.length,
    expiryToUnpinP50Ms: percentileMs(expiryToUnpin, 50),
    expiryToUnpinP99Ms: percentileMs(expiryToUnpin, 99),
    reconcileIntervalMs: INTERVAL_MS,
    finalityDepth: FINALITY,
    pollMs: 100,
    // The machine is shared: how many cores, and how busy they were during the run.
    cores: cpus().length,
    loadAvg1m: Math.round((loadavg()[0] ?? 0) * 100) / 100,
    goalA: percentileMs(finalToPinned, 99) <= INTERVAL_MS + pinP99Ms,
    goalB: percentileMs(expiryToUnpin, 99) <= INTERVAL_MS,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  stopPolling.abort();
  if (dev && dev.exitCode === null && dev.signalCode === null) {
    const exited = once(dev, "exit");
    dev.kill("SIGINT");
    const timer = setTimeout(() => dev?.kill("SIGKILL"), 60_000);
    await exited;
    clearTimeout(timer);
  }
  await kubo.destroy();
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  for (const schema of [indexerSchema, reconcilerSchema])
    await client.query(`drop schema if exists "${schema}" cascade`);
  await client.end();
  await rm(cwd, { recursive: true, force: true });
}
