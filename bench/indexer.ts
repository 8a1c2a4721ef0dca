/**
 * Indexer benchmark: how fast `ponder start` backfills PinHash events from zero.
 *
 *   tsx bench/indexer.ts [--events 200000] [--batch 5000]
 *   tsx bench/indexer.ts --events 20000 --per-block 1 [--rpc-batch 100]
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
import { readdirSync, readFileSync } from "node:fs";
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
  http,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { RegistryAbi, RegistryBytecode, StorageAbi, StorageBytecode } from "@/abis/index.js";
import { sendPinMany } from "@/test/harness/anvil.js";
import { ponderTimeSums, startPonder, uniqueChainId } from "@/test/harness/ponder.js";
import { createTestSchema } from "@/test/harness/postgres.js";

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
    ],
    { stdio: "ignore", detached: true },
  );
}

/** Sum of VmHWM (peak resident set) over the processes of a process group, in MB. */
function peakRssOfGroup(pgid: number): number {
  let totalKb = 0;
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Fields after the parenthesised command name: state ppid pgrp ...
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== pgid) continue;
      const status = readFileSync(`/proc/${entry}/status`, "utf8");
      const match = /VmHWM:\s+(\d+) kB/.exec(status);
      if (match) totalKb += Number(match[1]);
    } catch {
      // the process ended between listing and reading
    }
  }
  return totalKb / 1024;
}

async function main(): Promise<void> {
  const events = argument("events", 200_000);
  const perBlock = process.argv.includes("--per-block") ? argument("per-block", 1) : undefined;
  const batch = perBlock === undefined ? argument("batch", DEFAULT_BATCH) : 1;
  // The chain's rpcBatchSize (JSON-RPC batches over HTTP); absent, the default: none.
  const rpcBatchSize = process.argv.includes("--rpc-batch")
    ? argument("rpc-batch", 100)
    : undefined;
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
  const transport = http(rpcUrl, { timeout: 120_000 });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: 50 });
  const walletClient = createWalletClient({ chain, transport, account });
  const testClient = createTestClient({ chain, transport, mode: "anvil" });

  let ponder: Awaited<ReturnType<typeof startPonder>> | undefined;
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

    // Emit (not timed): transactions numbered here and sent without waiting (sendPinMany).
    const emitStart = performance.now();
    let nonce = await publicClient.getTransactionCount({ address: account.address });
    const hashes: `0x${string}`[] = [];
    // Spread histories: K transactions, then one block, mined explicitly. (Automine for K = 1
    // fell behind transactions sent without waiting: at block 5,209 of 20,000 anvil held
    // 14,790 pending and 4.6 GB, and mined no more.)
    if (perBlock !== undefined) await testClient.setAutomine(false);
    for (let start = 0; start < events; start += batch) {
      const cids = Array.from({ length: Math.min(batch, events - start) }, (_, k) =>
        benchCid(start + k),
      );
      hashes.push(await sendPinMany(walletClient, storage, cids, nonce++));
      if (perBlock !== undefined && hashes.length % perBlock === 0)
        await testClient.mine({ blocks: 1 });
    }
    if (perBlock !== undefined) {
      await testClient.mine({ blocks: 1 });
      await testClient.setAutomine(true);
    }
    const eventBlocks = new Set<bigint>();
    for (const hash of hashes) {
      const receipt = await publicClient.waitForTransactionReceipt({ hash, timeout: 600_000 });
      if (receipt.status !== "success") throw new Error(`pinMany reverted in ${hash}`);
      eventBlocks.add(receipt.blockNumber);
    }
    // Past Ponder's finality (30 blocks on unknown chains), so everything is backfill.
    await testClient.mine({ blocks: 64 });
    const headBlock = await publicClient.getBlockNumber({ cacheTime: 0 });
    log("emitted", {
      events,
      batch,
      perBlock,
      blocks: eventBlocks.size,
      transactions: hashes.length,
      headBlock: Number(headBlock),
      seconds: Number(((performance.now() - emitStart) / 1000).toFixed(1)),
    });

    // Timed: from spawning `ponder start` to /ready and every row present.
    const count = new pg.Client({ connectionString: schema.databaseUrl });
    await count.connect();
    const started = performance.now();
    ponder = await startPonder({
      databaseUrl: schema.databaseUrl,
      schema: schema.schema,
      chains: [{ id: chainId, rpc: rpcUrl, registry, ...(rpcBatchSize ? { rpcBatchSize } : {}) }],
      waitForReady: false,
      ...(process.env.BENCH_PONDER_LOG ? { logFile: process.env.BENCH_PONDER_LOG } : {}),
      // BENCH_PONDER_CPU_PROF=<dir>: a CPU profile of `ponder start`, written when it stops.
      ...(process.env.BENCH_PONDER_CPU_PROF
        ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PONDER_CPU_PROF}`] }
        : {}),
    });
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
      while (Date.now() < deadline) {
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
    if (rows < events)
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
    for (const phase of phases) {
      if (
        /Connected|Created|Started|Finished|Completed|Indexed block range/.test(phase.msg ?? "")
      ) {
        log("ponder", {
          atSeconds: Number((((phase.time ?? first) - first) / 1000).toFixed(2)),
          event: phase.msg,
          ms: phase.duration === undefined ? undefined : Math.round(phase.duration),
        });
      }
    }
    // Where the time went, from Ponder's own histograms: seconds summed over calls (calls
    // overlap, so a sum can exceed the wall time), by RPC method and database method.
    log("ponder metrics", await ponderTimeSums(ponder.url));
    log("timing", {
      readySeconds: Number((((readyAt ?? started) - started) / 1000).toFixed(2)),
      totalSeconds: Number(seconds.toFixed(2)),
    });
    console.log(
      JSON.stringify({
        bench: "indexer",
        events,
        seconds: Number(seconds.toFixed(2)),
        eventsPerSec: Math.round(events / seconds),
        blocks: eventBlocks.size,
        blocksPerSec: Math.round(eventBlocks.size / seconds),
        rpcBatchSize: rpcBatchSize ?? 1,
        peakRssMB: Math.round(peakRssMB),
      }),
    );
  } finally {
    await ponder?.stop();
    killAnvil();
    await schema.drop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
