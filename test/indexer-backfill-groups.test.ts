/**
 * Issue 14: the second part of patches/ponder+0.17.7.patch. Ponder 0.17's backfill writes
 * each fetched block to its sync store with its own inserts (blocks, transactions, logs: three
 * statements per block), so a history of one PinHash per block costs three round trips per
 * event, and on this machine those inserts were the wall (bench:indexer's metrics: 2,997
 * insert_blocks calls for 3,000 blocks, waiting 255 ms each on average). The patch writes the
 * blocks that arrive while an insert runs in the next one. This test backfills a real history
 * of one event per block and reads Ponder's own metrics: every row is there, exactly once,
 * with far fewer inserts than blocks. It fails when a Ponder upgrade drops the patch. A second
 * run with the chain's rpcBatchSize checks that the block fetches go out in JSON-RPC batches.
 * The patch's third part writes those rows as one array per column (`unnest`) instead of one
 * drizzle parameter per value: the sync store is compared, column by column, with what Ponder's
 * own encoders make of the node's answers.
 */
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import pg from "pg";
import { toHex } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import { createReadModel } from "@/db/read-model/index.js";
import { type Anvil, deployContracts, pinBatches, startAnvil } from "./harness/anvil.js";
import {
  type PonderProcess,
  ponderTimeSums,
  startPonder,
  uniqueChainId,
} from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";
import { startRpcProxy } from "./harness/rpc-proxy.js";

const ENCODERS = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "node_modules/ponder/dist/esm/sync-store/encode.js",
);
type Encoders = {
  encodeBlock(args: { block: unknown; chainId: number }): Record<string, unknown>;
  encodeTransaction(args: { transaction: unknown; chainId: number }): Record<string, unknown>;
  encodeLog(args: { log: unknown; chainId: number }): Record<string, unknown>;
};

/** One PinHash per block. */
const BLOCKS = 400;

let anvil: Anvil;
let db: TestSchema;
let batchedDb: TestSchema;
let ponder: PonderProcess | undefined;
const emitted = new Set<string>();
let registry: `0x${string}`;

beforeAll(async () => {
  anvil = await startAnvil({ chainId: uniqueChainId() });
  db = await createTestSchema("groups");
  batchedDb = await createTestSchema("groups_batched");
  const deployed = await deployContracts(anvil);
  registry = deployed.registry;
  for (let i = 0; i < BLOCKS; i++) {
    const digest = await sha256.digest(new TextEncoder().encode(`group ${i}`));
    emitted.add(CID.createV1(0x55, digest).toString());
  }
  await pinBatches(
    anvil,
    deployed.storage,
    [...emitted].map((cid) => [cid]),
  );
  // Past Ponder's finality (30 blocks here), so the whole history is backfill.
  await anvil.testClient.mine({ blocks: 64 });
}, 180_000);

afterAll(async () => {
  await ponder?.stop();
  await anvil?.stop();
  await db?.drop();
  await batchedDb?.drop();
});

/** The PinHash CIDs in `schema`'s event table. */
async function indexedCids(schema: TestSchema): Promise<string[]> {
  const kysely = connectDatabase({ databaseUrl: schema.databaseUrl, applicationName: "groups" });
  try {
    const events = await createReadModel({ db: kysely, schema: schema.schema }).eventsAfter(
      null,
      10_000,
    );
    return events.filter((e) => e.kind === "pin_hash").map((e) => e.cid as string);
  } finally {
    await kysely.destroy();
  }
}

/** Ponder's column `key` as stored: snake_case (sha3Uncles → sha3_uncles). */
const column = (key: string) => key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

/** The rows of `table` for this chain, keyed by `key`, every value as text (or null). */
async function storedRows(client: pg.Client, table: string, key: string[]) {
  const { rows } = await client.query<Record<string, unknown>>(
    `select * from ponder_sync.${table} where chain_id = $1`,
    [anvil.chainId],
  );
  return new Map(rows.map((row) => [key.map((k) => String(row[k])).join("/"), row]));
}

/**
 * Every block, transaction and log of the backfill is in the sync store exactly as Ponder's
 * encoders make it from the node's own answers, column by column: numbers of 78 digits,
 * nullable columns, the transaction's input and the log's data.
 */
async function expectSyncStoreMatchesNode(): Promise<void> {
  const { encodeBlock, encodeTransaction, encodeLog } = (await import(
    pathToFileURL(ENCODERS).href
  )) as Encoders;
  const chainId = anvil.chainId;
  const client = new pg.Client({ connectionString: db.databaseUrl });
  await client.connect();
  try {
    const blocks = await storedRows(client, "blocks", ["number"]);
    const transactions = await storedRows(client, "transactions", ["hash"]);
    const logs = await storedRows(client, "logs", ["block_number", "log_index"]);
    // Ponder stores the logs its filters match: the PinHash events and the Register.
    expect(logs.size).toBe(BLOCKS + 1);
    const same = (
      expected: Record<string, unknown>,
      stored: Record<string, unknown> | undefined,
    ) => {
      expect(stored).toBeDefined();
      for (const [key, value] of Object.entries(expected)) {
        const text = value === null || value === undefined ? null : String(value);
        const actual = stored?.[column(key)];
        expect({ key, value: actual === null ? null : String(actual) }).toEqual({
          key,
          value: text,
        });
      }
    };
    // The node's raw JSON-RPC answers, as Ponder receives them.
    const nodeLogs = await anvil.publicClient.request({
      method: "eth_getLogs",
      params: [{ fromBlock: "0x0", toBlock: "latest" }],
    });
    let checkedLogs = 0;
    for (const log of nodeLogs) {
      const key = `${BigInt(log.blockNumber ?? -1)}/${Number(log.logIndex ?? -1)}`;
      if (!logs.has(key)) continue;
      same(encodeLog({ log, chainId }), logs.get(key));
      checkedLogs++;
    }
    expect(checkedLogs).toBe(logs.size);
    let checkedTransactions = 0;
    for (const number of blocks.keys()) {
      const block = await anvil.publicClient.request({
        method: "eth_getBlockByNumber",
        params: [toHex(BigInt(number)), true],
      });
      same(encodeBlock({ block, chainId }), blocks.get(number));
      for (const transaction of block?.transactions ?? []) {
        if (typeof transaction === "string") continue;
        // Ponder keeps only the transactions of matched logs.
        if (!transactions.has(transaction.hash)) continue;
        same(encodeTransaction({ transaction, chainId }), transactions.get(transaction.hash));
        checkedTransactions++;
      }
    }
    expect(blocks.size).toBe(BLOCKS + 1);
    expect(checkedTransactions).toBe(transactions.size);
    expect(checkedTransactions).toBe(BLOCKS + 1);
  } finally {
    await client.end();
  }
}

describe("a backfill of one event per block", () => {
  test("writes every row once, with far fewer sync-store inserts than blocks", async () => {
    ponder = await startPonder({
      databaseUrl: db.databaseUrl,
      schema: db.schema,
      chains: [{ id: anvil.chainId, rpc: anvil.rpcUrl, registry }],
      readyTimeoutMs: 120_000,
    });
    const cids = await indexedCids(db);
    expect(cids.length).toBe(BLOCKS);
    expect(new Set(cids)).toEqual(emitted);
    const sums = await ponderTimeSums(ponder.url);
    const blockInserts = sums["database_method:insert_blocks"]?.calls ?? 0;
    const logInserts = sums["database_method:insert_logs"]?.calls ?? 0;
    console.log(JSON.stringify({ blocks: BLOCKS, blockInserts, logInserts }));
    // Unpatched: one insert_blocks and one insert_logs per block (400 each).
    expect(blockInserts).toBeGreaterThan(0);
    expect(blockInserts).toBeLessThan(BLOCKS / 4);
    expect(logInserts).toBeLessThan(BLOCKS / 4);
    await expectSyncStoreMatchesNode();
    await ponder.stop();
    ponder = undefined;
  }, 180_000);

  test("with rpcBatchSize, sends the block fetches in JSON-RPC batches and loses nothing", async () => {
    const proxy = await startRpcProxy(anvil.rpcUrl);
    try {
      ponder = await startPonder({
        databaseUrl: batchedDb.databaseUrl,
        schema: batchedDb.schema,
        chains: [{ id: anvil.chainId, rpc: proxy.url, registry, rpcBatchSize: 100 }],
        readyTimeoutMs: 120_000,
      });
      const cids = await indexedCids(batchedDb);
      expect(cids.length).toBe(BLOCKS);
      expect(new Set(cids)).toEqual(emitted);
      const fetches = proxy.calls.filter((call) => call.method === "eth_getBlockByNumber").length;
      console.log(JSON.stringify({ calls: proxy.calls.length, requests: proxy.requests, fetches }));
      // Every block was fetched, yet far fewer HTTP requests went out than calls.
      expect(fetches).toBeGreaterThanOrEqual(BLOCKS);
      expect(proxy.requests).toBeLessThan(proxy.calls.length / 3);
    } finally {
      await ponder?.stop();
      ponder = undefined;
      await proxy.close();
    }
  }, 180_000);
});
