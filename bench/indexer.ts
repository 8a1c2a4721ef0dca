/**
 * Indexer benchmark: how fast `ponder start` backfills PinHash events from zero.
 *
 *   tsx bench/indexer.ts [--events 200000] [--batch 5000]
 *   tsx bench/indexer.ts --events 20000 --per-block 1 [--rpc-batch 20 | --rpc-batch 1,20,100]
 *   … --baseline: then the same history through Ponder with indexing functions that write
 *   nothing (Ponder's own cost, measured in the same run), reported as `baseline`
 *
 * Two shapes of history: packed (`--batch N`: N PinHash events per pinMany transaction, so
 * few blocks) and spread like a real one (`--per-block K`: K transactions of one PinHash each
 * per block, so events / K blocks, each costing Ponder a block fetch).
 *
 * Starts a fresh anvil (high block gas limit), deploys Registry + Storage, emits N distinct
 * valid CIDs (CIDv1 raw of sha256(i)) through `pinMany` batches, mines past Ponder's 30-block
 * finality so the whole history is backfill, then times `ponder start` from spawn until
 * /ready answers 200 and all N rows are in the event table. Emission is not timed.
 * The last line of output is the result as JSON.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import getPort from "get-port";
import { CID } from "multiformats/cid";
import { create as createDigest } from "multiformats/hashes/digest";
import pg from "pg";
import {
  type Address,
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  encodeFunctionData,
  http,
  type PublicClient,
  toHex,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { RegistryAbi, RegistryBytecode, StorageAbi, StorageBytecode } from "@/abis/index.js";
import { sendPinMany } from "@/test/harness/anvil.js";
import { ponderTimeSums, startPonder, uniqueChainId } from "@/test/harness/ponder.js";
import { createTestSchema } from "@/test/harness/postgres.js";
import { allPids, readProcStat } from "@/test/harness/proc-stat.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const DEPLOYER_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/** Per pinMany transaction; gas per event is ~4.5k, so 5000 events is ~23M gas. */
const DEFAULT_BATCH = 5_000;
const BLOCK_GAS_LIMIT = 4_000_000_000n;
const BACKFILL_TIMEOUT_MS = 30 * 60_000;

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  if (index === -1) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new Error(`--${name} expects a positive whole number`);
  return value;
}

/** A comma-separated list of positive whole numbers, e.g. `--rpc-batch 1,20,100`. */
function sizesArgument(name: string): number[] {
  const text = process.argv[process.argv.indexOf(`--${name}`) + 1] ?? "";
  const sizes = text.split(",").map(Number);
  if (sizes.some((size) => !Number.isSafeInteger(size) || size <= 0))
    throw new Error(`--${name} expects positive whole numbers separated by commas`);
  return sizes;
}

function log(message: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ msg: message, ...fields }));
}

/** The i-th benchmark CID: CIDv1, raw codec, sha256 of the decimal string. */
function benchCid(i: number): string {
  const bytes = createHash("sha256").update(String(i)).digest();
  return CID.createV1(0x55, createDigest(0x12, bytes)).toString();
}

function startAnvil(port: number, chainId: number): ChildProcess {
  const binary = join(ROOT, "node_modules", "@foundry-rs", "anvil-linux-amd64", "bin", "anvil");
  return spawn(
    binary,
    [
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--chain-id",
      String(chainId),
      "--gas-limit",
      String(BLOCK_GAS_LIMIT),
      "--silent",
      // Keep no past states: the bench reads only blocks and logs, and anvil would otherwise
      // write each state beyond its memory window to ~/.foundry/anvil/tmp and leave it there,
      // even after a clean exit (one run of 20,000 blocks left 10 GB behind).
      "--prune-history",
    ],
    { stdio: "ignore", detached: true },
  );
}

/** Sum of VmHWM (peak resident set) over the processes of a process group, in MB. */
function peakRssOfGroup(pgid: number): number {
  let totalKb = 0;
  for (const pid of allPids()) {
    if (readProcStat(pid)?.pgrp !== pgid) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const match = /VmHWM:\s+(\d+) kB/.exec(status);
      if (match) totalKb += Number(match[1]);
    } catch {
      // the process ended between listing and reading
    }
  }
  return totalKb / 1024;
}

/** Packed history: `batch` events per pinMany transaction, automined. Returns the blocks. */
async function emitPacked(
  walletClient: Parameters<typeof sendPinMany>[0],
  publicClient: PublicClient,
  storage: Address,
  events: number,
  batch: number,
): Promise<Set<bigint>> {
  let nonce = await publicClient.getTransactionCount({ address: walletClient.account.address });
  const hashes: `0x${string}`[] = [];
  for (let start = 0; start < events; start += batch) {
    const cids = Array.from({ length: Math.min(batch, events - start) }, (_, k) =>
      benchCid(start + k),
    );
    hashes.push(await sendPinMany(walletClient, storage, cids, nonce++));
  }
  const blocks = new Set<bigint>();
  for (const hash of hashes) {
    const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 600_000 });
    if (receipt.status !== "success") throw new Error(`pinMany reverted in ${hash}`);
    blocks.add(receipt.blockNumber);
  }
  return blocks;
}

/**
 * Spread history: `perBlock` transactions of one PinHash each, then one block. Sent as one
 * JSON-RPC batch of `eth_sendTransaction` per block (anvil signs for its unlocked dev account)
 * and an `evm_mine`, with automine off: one viem writeContract per transaction (fee lookups,
 * signing, a receipt wait) took 5 minutes for 20,000. Every event is then counted back
 * through eth_getLogs, so a transaction that failed is caught here, not in the timing.
 */
async function emitSpread(
  rpcUrl: string,
  publicClient: PublicClient,
  from: Address,
  storage: Address,
  events: number,
  perBlock: number,
): Promise<Set<bigint>> {
  const call = async (requests: { method: string; params: unknown[] }[]) => {
    const response = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(requests.map((request, id) => ({ jsonrpc: "2.0", id, ...request }))),
    });
    const answers = (await response.json()) as { error?: { message: string } }[];
    const failed = answers.find((answer) => answer.error !== undefined);
    if (failed) throw new Error(`anvil refused a request: ${failed.error?.message}`);
  };
  await call([{ method: "evm_setAutomine", params: [false] }]);
  let nonce = await publicClient.getTransactionCount({ address: from });
  // A batch's requests may be served in any order, so each block is two calls: its
  // transactions, then the mine.
  let block: { method: string; params: unknown[] }[] = [];
  for (let i = 0; i < events; i++) {
    const data = encodeFunctionData({
      abi: StorageAbi,
      functionName: "pinMany",
      args: [[benchCid(i)]],
    });
    block.push({
      method: "eth_sendTransaction",
      params: [{ from, to: storage, data, gas: toHex(212_000), nonce: toHex(nonce++) }],
    });
    if (block.length === perBlock || i === events - 1) {
      await call(block);
      await call([{ method: "evm_mine", params: [] }]);
      block = [];
    }
  }
  await call([{ method: "evm_setAutomine", params: [true] }]);
  const logs = await publicClient.getContractEvents({
    address: storage,
    abi: StorageAbi,
    eventName: "PinHash",
    fromBlock: 0n,
    toBlock: "latest",
  });
  if (logs.length !== events)
    throw new Error(`emitted ${logs.length} PinHash events of ${events}: a transaction failed`);
  return new Set(logs.map((log) => log.blockNumber));
}

/**
 * The baseline's indexing functions: the same contracts and events, the same event fields
 * read (so Ponder selects the same block and transaction columns), nothing written. What
 * Quasar's run takes beyond this is the cost of our handlers and their rows.
 */
const BASELINE_INDEXING = `import { ponder } from "ponder:registry";
let seen = 0;
const read = (event) => {
  if (event.id && event.block.number >= 0n && event.block.hash && event.block.timestamp >= 0n
    && event.transaction.hash && event.log.logIndex >= 0 && event.log.address) seen++;
};
ponder.on("Registry:Register", ({ event }) => read(event));
ponder.on("Registry:Unregister", ({ event }) => read(event));
ponder.on("Storage:PinHash", ({ event }) => { read(event); seen += event.args.cid.length > 0 ? 0 : 1; });
`;

type Backfill = { seconds: number; startupSeconds: number | undefined; peakRssMB: number };

/**
 * Times one `ponder start` from spawn until /ready (and, with `countRows`, every PinHash row
 * in the event table), logging Ponder's phases and its time per RPC and database method.
 */
async function timeBackfill(params: {
  schema: Awaited<ReturnType<typeof createTestSchema>>;
  chains: Parameters<typeof startPonder>[0]["chains"];
  events: number;
  countRows: boolean;
  indexingSource?: string;
}): Promise<Backfill> {
  const { schema, events } = params;
  const count = new pg.Client({ connectionString: schema.databaseUrl });
  await count.connect();
  const started = performance.now();
  const ponder = await startPonder({
    databaseUrl: schema.databaseUrl,
    schema: schema.schema,
    chains: params.chains,
    waitForReady: false,
    ...(params.indexingSource === undefined ? {} : { indexingSource: params.indexingSource }),
    ...(process.env.BENCH_PONDER_LOG ? { logFile: process.env.BENCH_PONDER_LOG } : {}),
    // BENCH_PONDER_CPU_PROF=<dir>: a CPU profile of `ponder start`, written when it stops.
    ...(process.env.BENCH_PONDER_CPU_PROF
      ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PONDER_CPU_PROF}`] }
      : {}),
  });
  try {
    let peakRssMB = 0;
    const pgid = ponder.pid;
    const sampler = setInterval(() => {
      peakRssMB = Math.max(peakRssMB, peakRssOfGroup(pgid));
    }, 200);
    let readyAt: number | undefined;
    let rows = 0;
    try {
      await ponder.waitForReady(BACKFILL_TIMEOUT_MS);
      readyAt = performance.now();
      const deadline = Date.now() + BACKFILL_TIMEOUT_MS;
      while (params.countRows && Date.now() < deadline) {
        const result = await count.query<{ n: string }>(
          `SELECT count(*) AS n FROM "${schema.schema}"."event" WHERE kind = 'pin_hash'`,
        );
        rows = Number(result.rows[0]?.n ?? 0);
        if (rows >= events) break;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      clearInterval(sampler);
      peakRssMB = Math.max(peakRssMB, peakRssOfGroup(pgid));
      await count.end();
    }
    const seconds = (performance.now() - started) / 1000;
    if (params.countRows && rows < events)
      throw new Error(`only ${rows} of ${events} rows after ${seconds.toFixed(1)} s`);

    // Where the time went, from Ponder's own log lines.
    const phases = ponder
      .output()
      .split("\n")
      .flatMap((line) => {
        try {
          const entry = JSON.parse(line) as { msg?: string; time?: number; duration?: number };
          return entry.msg ? [entry] : [];
        } catch {
          return [];
        }
      });
    const first = phases[0]?.time ?? 0;
    // Ponder's start-up (loading its code, the build, the schema) ends where its backfill
    // starts: a fixed cost per start, reported apart so the backfill's own rate shows.
    const spawnedAt = performance.timeOrigin + started;
    const backfillStart = phases.find((phase) => /Started backfill indexing/.test(phase.msg ?? ""));
    const startupSeconds =
      backfillStart?.time === undefined ? undefined : (backfillStart.time - spawnedAt) / 1000;
    const run = `${params.indexingSource === undefined ? "quasar" : "baseline"}, rpcBatchSize ${params.chains[0]?.rpcBatchSize ?? 1}`;
    for (const phase of phases) {
      if (
        /Connected|Created|Started|Finished|Completed|Indexed block range/.test(phase.msg ?? "")
      ) {
        log("ponder", {
          run,
          atSeconds: Number((((phase.time ?? first) - first) / 1000).toFixed(2)),
          event: phase.msg,
          ms: phase.duration === undefined ? undefined : Math.round(phase.duration),
        });
      }
    }
    // Where the time went, from Ponder's own histograms: seconds summed over calls (calls
    // overlap, so a sum can exceed the wall time), by RPC method and database method.
    log("ponder metrics", { run, ...(await ponderTimeSums(ponder.url)) });
    log("timing", {
      run,
      readySeconds: Number((((readyAt ?? started) - started) / 1000).toFixed(2)),
      totalSeconds: Number(seconds.toFixed(2)),
    });
    return { seconds, startupSeconds, peakRssMB };
  } finally {
    await ponder.stop();
  }
}

async function main(): Promise<void> {
  const events = argument("events", 200_000);
  const perBlock = process.argv.includes("--per-block") ? argument("per-block", 1) : undefined;
  const batch = perBlock === undefined ? argument("batch", DEFAULT_BATCH) : 1;
  // The chain's rpcBatchSize (JSON-RPC batches over HTTP); absent, the default: none (1).
  // A list (`--rpc-batch 1,20,100`) times one backfill per size over the same history.
  const rpcBatchSizes = process.argv.includes("--rpc-batch") ? sizesArgument("rpc-batch") : [1];
  const chainId = uniqueChainId();
  const port = await getPort({ host: "127.0.0.1" });
  const anvil = startAnvil(port, chainId);
  const killAnvil = () => {
    try {
      if (anvil.pid) process.kill(-anvil.pid, "SIGKILL");
    } catch {
      // already gone
    }
  };
  process.on("exit", killAnvil);
  const schema = await createTestSchema("bench");
  const rpcUrl = `http://127.0.0.1:${port}`;
  const chain = defineChain({
    id: chainId,
    name: "bench",
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  const account = privateKeyToAccount(DEPLOYER_KEY);
  // No cap on answers: the events are counted back in one eth_getLogs (1.4 MB per 2,000).
  const transport = http(rpcUrl, { timeout: 120_000, maxResponseBodySize: false });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 50 });
  const walletClient = createWalletClient({ chain, transport, account });
  const testClient = createTestClient({ chain, transport, mode: "anvil" });

  const schemas = [schema];
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await publicClient.getChainId();
        break;
      } catch (error) {
        if (attempt > 200) throw error;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }

    const deploy = async (abi: typeof RegistryAbi | typeof StorageAbi, bytecode: `0x${string}`) => {
      const hash = await walletClient.deployContract({ abi, bytecode });
      const receipt = await publicClient.waitForTransactionReceipt({ hash });
      return receipt.contractAddress as Address;
    };
    const registry = await deploy(RegistryAbi, RegistryBytecode);
    const storage = await deploy(StorageAbi, StorageBytecode);
    await publicClient.waitForTransactionReceipt({
      hash: await walletClient.writeContract({
        address: registry,
        abi: RegistryAbi,
        functionName: "registerContract",
        args: [storage],
      }),
    });

    // Emit (not timed).
    const emitStart = performance.now();
    const eventBlocks =
      perBlock === undefined
        ? await emitPacked(walletClient, publicClient, storage, events, batch)
        : await emitSpread(rpcUrl, publicClient, account.address, storage, events, perBlock);
    const transactions = perBlock === undefined ? Math.ceil(events / batch) : events;
    // Past Ponder's finality (30 blocks on unknown chains), so everything is backfill.
    await testClient.mine({ blocks: 64 });
    const headBlock = await publicClient.getBlockNumber({ cacheTime: 0 });
    log("emitted", {
      events,
      batch,
      perBlock,
      blocks: eventBlocks.size,
      transactions,
      headBlock: Number(headBlock),
      seconds: Number(((performance.now() - emitStart) / 1000).toFixed(1)),
    });

    const chainsFor = (rpcBatchSize: number) => [
      { id: chainId, rpc: rpcUrl, registry, ...(rpcBatchSize > 1 ? { rpcBatchSize } : {}) },
    ];
    // Each run after the first starts from an empty schema; Ponder's RPC cache of the chain
    // was purged when the run before it stopped, so every run fetches the whole history.
    const freshSchema = async (prefix: string) => {
      const next = await createTestSchema(prefix);
      schemas.push(next);
      return next;
    };
    const runs: { rpcBatchSize: number; backfill: Backfill }[] = [];
    for (const [index, rpcBatchSize] of rpcBatchSizes.entries()) {
      const backfill = await timeBackfill({
        schema: index === 0 ? schema : await freshSchema("benchrun"),
        chains: chainsFor(rpcBatchSize),
        events,
        countRows: true,
      });
      runs.push({ rpcBatchSize, backfill });
    }
    const [first] = runs as [(typeof runs)[number], ...typeof runs];
    let baseline: Backfill | undefined;
    if (process.argv.includes("--baseline")) {
      // The first run's settings, with indexing functions that read what ours read and
      // write nothing.
      baseline = await timeBackfill({
        schema: await freshSchema("benchbase"),
        chains: chainsFor(first.rpcBatchSize),
        events,
        countRows: false,
        indexingSource: BASELINE_INDEXING,
      });
    }
    const rate = (backfill: Backfill) => ({
      seconds: Number(backfill.seconds.toFixed(2)),
      eventsPerSec: Math.round(events / backfill.seconds),
      blocks: eventBlocks.size,
      blocksPerSec: Math.round(eventBlocks.size / backfill.seconds),
      startupSeconds:
        backfill.startupSeconds === undefined ? null : Number(backfill.startupSeconds.toFixed(2)),
      backfillEventsPerSec:
        backfill.startupSeconds === undefined
          ? null
          : Math.round(events / (backfill.seconds - backfill.startupSeconds)),
      peakRssMB: Math.round(backfill.peakRssMB),
    });
    console.log(
      JSON.stringify({
        bench: "indexer",
        events,
        ...rate(first.backfill),
        rpcBatchSize: first.rpcBatchSize,
        ...(runs.length > 1
          ? {
              runs: runs.map((run) => ({ rpcBatchSize: run.rpcBatchSize, ...rate(run.backfill) })),
            }
          : {}),
        ...(baseline === undefined
          ? {}
          : {
              // Ponder alone: the same events through indexing functions that write nothing.
              baseline: rate(baseline),
              ratioToBaseline: Number((baseline.seconds / first.backfill.seconds).toFixed(3)),
            }),
      }),
    );
  } finally {
    killAnvil();
    for (const each of schemas) await each.drop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
