/**
 * The auditor's promise: recomputing the desired set from Quasar's database and straight
 * from the chain's logs gives the same digest, also after a reorg replaced indexed blocks.
 * Real anvil, real Postgres, real `ponder start`; the chain replay reads only the RPC.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { type Address, encodeFunctionData } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StorageAbi } from "@/abis/index.js";
import { readChainEvents } from "@/audit/chain-logs.js";
import { readDatabaseHistory } from "@/audit/db-history.js";
import { resolveFinality } from "@/audit/finality.js";
import { replayDesiredSet } from "@/audit/replay.js";
import { connectDatabase } from "@/db/connect.js";
import { createReadModel } from "@/db/read-model/index.js";
import {
  type Anvil,
  deployContracts,
  deployStorage,
  pinMany,
  register,
  registerData,
  startAnvil,
  unregister,
} from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

const ROOT = join(import.meta.dirname, "..");

async function cidOf(label: string): Promise<string> {
  const digest = await sha256.digest(new TextEncoder().encode(label));
  return CID.createV1(0x55, digest).toString();
}

let anvil: Anvil;
let db: TestSchema;
let ponder: PonderProcess;
let kysely: ReturnType<typeof connectDatabase>;
let chainId: number;
let registry: Address;
let storage: Address;
const cids: Record<string, string> = {};

const lower = (a: bigint, b: bigint) => (a < b ? a : b);

async function head(): Promise<bigint> {
  return anvil.publicClient.getBlockNumber({ cacheTime: 0 });
}

/**
 * Mines until both finality rules pass `block`: Ponder's (30 behind, in steps) and anvil's
 * `finalized` tag (64 behind). Returns the lower of the two.
 */
async function finalizeThrough(block: bigint): Promise<bigint> {
  const model = createReadModel({ db: kysely, schema: db.schema });
  const deadline = Date.now() + 120_000;
  for (;;) {
    const progress = (await model.progress()).find((chain) => chain.chainId === chainId);
    const chainFinal = (await resolveFinality(anvil.publicClient, chainId)).finalizedBlock;
    if (progress && progress.finalizedBlock >= block && chainFinal >= block) {
      return lower(progress.finalizedBlock, chainFinal);
    }
    if (Date.now() > deadline) throw new Error(`Ponder never finalized block ${block}`);
    await anvil.testClient.mine({ blocks: 10 });
    await ponder.waitForBlock(chainId, await head(), 60_000);
  }
}

/** Both replays as of `toBlock` (below both finality rules), at one fixed instant. */
async function bothReplays(toBlock: bigint) {
  const now = new Date();
  const ttlMs = 14 * 86_400_000;
  const history = await readDatabaseHistory({
    db: kysely,
    indexerSchema: db.schema,
    reconcilerSchema: `${db.schema}_none`,
    chainId,
  });
  const fromDatabase = replayDesiredSet({
    chainId,
    events: history.events,
    finalizedBlock: history.finalizedBlock,
    toBlock,
    now,
    ttlMs,
  });
  const finality = await resolveFinality(anvil.publicClient, chainId);
  const chainEvents = await readChainEvents({
    client: anvil.publicClient,
    chainId,
    registry,
    fromBlock: 0n,
    toBlock,
    blockRange: 7n, // many small ranges, as on a real provider
  });
  const fromChain = replayDesiredSet({
    chainId,
    events: chainEvents,
    finalizedBlock: finality.finalizedBlock,
    toBlock,
    now,
    ttlMs,
  });
  const databaseEvents = history.events.filter((event) => event.blockNumber <= toBlock);
  return { fromDatabase, fromChain, databaseEvents, chainEvents };
}

beforeAll(async () => {
  chainId = uniqueChainId();
  anvil = await startAnvil({ chainId });
  db = await createTestSchema("audit");
  ({ registry, storage } = await deployContracts(anvil));
  for (const label of ["a", "b", "c", "d", "lost", "kept", "late"])
    cids[label] = await cidOf(label);

  // A history with every rule in it: two storage contracts, one unregistered (demoted), an
  // invalid CID, and a contract that was never registered (its logs must not count).
  const second = await deployStorage(anvil);
  await register(anvil, registry, second);
  const stranger = await deployStorage(anvil);
  await pinMany(anvil, storage, [cids.a as string, cids.b as string, "not a cid"]);
  await registerData(anvil, second, `0x${"11".repeat(32)}`, cids.c as string);
  await registerData(anvil, stranger, `0x${"22".repeat(32)}`, cids.d as string);
  await unregister(anvil, registry, second);

  ponder = await startPonder({
    databaseUrl: db.databaseUrl,
    schema: db.schema,
    chains: [{ id: chainId, rpc: anvil.rpcUrl, registry }],
  });
  kysely = connectDatabase({ databaseUrl: db.databaseUrl, applicationName: "audit-test" });
}, 180_000);

afterAll(async () => {
  await kysely?.destroy();
  await ponder?.stop();
  await anvil?.stop();
  await db?.drop();
});

describe("audit replay", () => {
  it("database replay and chain replay agree, event by event and in the digest", async () => {
    const last = await head();
    await ponder.waitForBlock(chainId, last, 60_000);
    // Below Ponder's finality and anvil's finalized tag alike.
    const toBlock = await finalizeThrough(last);
    expect(toBlock).toBeGreaterThanOrEqual(last);

    const { fromDatabase, fromChain, databaseEvents, chainEvents } = await bothReplays(toBlock);
    // The auditor's own positions are Ponder's ids, log for log.
    expect(chainEvents.map((event) => event.id)).toEqual(databaseEvents.map((event) => event.id));
    expect(chainEvents.map((event) => event.cid)).toEqual(databaseEvents.map((event) => event.cid));
    expect(fromChain.digest).toEqual(fromDatabase.digest);

    const desired = new Map(fromChain.entries.map((entry) => [entry.cid, entry]));
    expect(desired.get(cids.a as string)?.reasons.map((r) => r.kind)).toEqual(["confirmed"]);
    expect(desired.get(cids.c as string)?.reasons.map((r) => r.kind)).toEqual(["demoted"]);
    expect(desired.has(cids.d as string)).toBe(false);
    expect(fromChain.digest.cids).toBe(3);
  });

  it("still agrees after a reorg replaced blocks the indexer had indexed", async () => {
    await pinMany(anvil, storage, [cids.lost as string]);
    const lostBlock = await head();
    await ponder.waitForBlock(chainId, lostBlock, 60_000);
    const pinTx = {
      from: anvil.account.address,
      to: storage,
      data: encodeFunctionData({
        abi: StorageAbi,
        functionName: "pinMany",
        args: [[cids.kept as string]],
      }),
    };
    await anvil.testClient.reorg({ depth: 2, transactions: [[pinTx, 0]] });
    await anvil.testClient.mine({ blocks: 1 });
    await pinMany(anvil, storage, [cids.late as string]);
    const last = await head();
    await ponder.waitForBlock(chainId, last, 60_000);

    const toBlock = await finalizeThrough(last);
    const { fromDatabase, fromChain } = await bothReplays(toBlock);
    expect(fromChain.digest).toEqual(fromDatabase.digest);
    const desired = new Set(fromChain.entries.map((entry) => entry.cid));
    expect(desired.has(cids.lost as string)).toBe(false);
    expect(desired.has(cids.kept as string)).toBe(true);
    expect(desired.has(cids.late as string)).toBe(true);

    // The same through the command line: one digest line from each source.
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      DATABASE_URL: db.databaseUrl,
      QUASAR_INDEXER_SCHEMA: db.schema,
      QUASAR_RECONCILER_SCHEMA: `${db.schema}_none`,
      QUASAR_CHAINS: JSON.stringify([{ id: chainId, rpc: anvil.rpcUrl, registry }]),
    };
    const run = async (extra: string[]) => {
      const child = spawn(
        join(ROOT, "node_modules", ".bin", "node"),
        [
          join(ROOT, "bin", "quasar.js"),
          "audit",
          "replay",
          "--chain",
          String(chainId),
          "--to-block",
          String(toBlock),
          ...extra,
        ],
        { env, stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const [code] = (await once(child, "exit")) as [number | null];
      expect(code, stderr).toBe(0);
      return { stdout, stderr };
    };
    const viaDatabase = await run(["--digest-only"]);
    const viaChain = await run(["--digest-only", "--rpc", anvil.rpcUrl]);
    const digestOf = (line: string) =>
      /digest (sha256:[0-9a-f]{64}) cids (\d+)/.exec(line)?.slice(1);
    expect(digestOf(viaDatabase.stdout)).toEqual([
      fromDatabase.digest.digest,
      String(fromDatabase.digest.cids),
    ]);
    expect(digestOf(viaChain.stdout)).toEqual(digestOf(viaDatabase.stdout));
    // Progress off a terminal: plain lines on stderr, no escape codes, the last one says done.
    expect(viaChain.stderr).toMatch(
      new RegExp(`^replaying chain ${chainId} from its RPC: \\d+/\\d+ blocks read`, "m"),
    );
    expect(viaChain.stderr).toMatch(/: done, \d+ blocks read .* in \d+\.\d s$/m);
    expect(viaChain.stderr).not.toContain("\x1b");
    // On a terminal (a pseudo-terminal from script(1)): a bar redrawn in place.
    const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;
    const tty = spawn(
      "script",
      [
        "-qec",
        [
          join(ROOT, "node_modules", ".bin", "node"),
          join(ROOT, "bin", "quasar.js"),
          "audit",
          "replay",
          "--chain",
          String(chainId),
          "--to-block",
          String(toBlock),
          "--rpc",
          anvil.rpcUrl,
          "--digest-only",
        ]
          .map(quote)
          .join(" "),
        "/dev/null",
      ],
      { env: { ...env, TERM: "xterm" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let screen = "";
    tty.stdout.on("data", (chunk: Buffer) => {
      screen += chunk.toString();
    });
    const [ttyCode] = (await once(tty, "exit")) as [number | null];
    expect(ttyCode, screen).toBe(0);
    expect(screen).toMatch(
      new RegExp(
        `\\rreplaying chain ${chainId} from its RPC \\[#{30}\\] 100% \\(\\d+/\\d+ blocks read`,
      ),
    );
    expect(digestOf(screen)).toEqual(digestOf(viaDatabase.stdout));

    // --at: the auditor finds the block in force at an instant itself: the last block whose
    // timestamp is at or before it (several blocks can share a second).
    const atTime = (await anvil.publicClient.getBlock({ blockNumber: toBlock })).timestamp;
    let expectedBound = toBlock;
    const tip = await head();
    while (
      expectedBound < tip &&
      (await anvil.publicClient.getBlock({ blockNumber: expectedBound + 1n })).timestamp <= atTime
    ) {
      expectedBound++;
    }
    const cli = async (args: string[]) => {
      const child = spawn(
        join(ROOT, "node_modules", ".bin", "node"),
        [join(ROOT, "bin", "quasar.js"), "audit", "replay", "--chain", String(chainId), ...args],
        { env, stdio: ["ignore", "pipe", "pipe"] },
      );
      let stdout = "";
      child.stdout.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      await once(child, "exit");
      return stdout;
    };
    const atOutput = await cli(["--rpc", anvil.rpcUrl, "--at", String(atTime), "--digest-only"]);
    expect(atOutput).toContain(` to-block ${expectedBound} `);
    const boundOutput = await cli([
      "--rpc",
      anvil.rpcUrl,
      "--to-block",
      String(expectedBound),
      "--digest-only",
    ]);
    expect(digestOf(atOutput)).toEqual(digestOf(boundOutput));
    expect(digestOf(atOutput)).toBeDefined();

    const csv = await run(["--rpc", anvil.rpcUrl, "--format", "csv"]);
    expect(csv.stdout.split("\n")[0]).toBe(
      "cid,kind,chain_id,contract,block_number,transaction_hash,until",
    );
    expect(csv.stdout).toContain(`${cids.kept},confirmed,${chainId},${storage.toLowerCase()}`);
    expect(csv.stderr).toContain(fromDatabase.digest.digest);
  });
});
