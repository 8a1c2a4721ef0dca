/**
 * Issue 14: a chain's request budget (`maxRequestsPerSecond`) holds for the whole indexer,
 * backfill and live sync, measured by a counting proxy between Ponder and anvil; and a
 * backfill under that budget keeps its reorg safety (an `anvil_reorg` during it: the rows
 * end up exactly the canonical chain's PinHash events).
 */
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { type Address, encodeFunctionData } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { StorageAbi } from "@/abis/index.js";
import { connectDatabase } from "@/db/connect.js";
import { createReadModel, type ReadModel } from "@/db/read-model/index.js";
import { type Anvil, deployContracts, pinBatches, startAnvil } from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";
import { type RpcProxy, startRpcProxy } from "./harness/rpc-proxy.js";

const BUDGET = 25;
/** One PinHash per block: each costs Ponder a block fetch, so the budget binds for seconds. */
const EVENTS = 150;
const REORG_DEPTH = 3;

let anvil: Anvil;
let proxy: RpcProxy;
let db: TestSchema;
let ponder: PonderProcess;
let kysely: ReturnType<typeof connectDatabase>;
let model: ReadModel;
let chainId: number;
let storage: Address;
let registry: Address;
let backfillSeconds = 0;
const canonical = new Set<string>();

async function cidOf(label: string): Promise<string> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(label))).toString();
}

beforeAll(async () => {
  chainId = uniqueChainId();
  anvil = await startAnvil({ chainId });
  db = await createTestSchema("budget");
  const deployed = await deployContracts(anvil);
  storage = deployed.storage;
  registry = deployed.registry;
  // One transaction per block.
  for (let i = 0; i < EVENTS; i++) canonical.add(await cidOf(`budget ${i}`));
  await pinBatches(
    anvil,
    storage,
    [...canonical].map((cid) => [cid]),
  );

  proxy = await startRpcProxy(anvil.rpcUrl);
  kysely = connectDatabase({
    databaseUrl: db.databaseUrl,
    applicationName: "budget",
  });
  model = createReadModel({ db: kysely, schema: db.schema });
}, 180_000);

afterAll(async () => {
  await kysely?.destroy();
  await ponder?.stop();
  await proxy?.close();
  await anvil?.stop();
  await db?.drop();
});

describe(`a budget of ${BUDGET} requests/s`, () => {
  test("a backfill under the budget with a reorg during it ends with the canonical rows only", async () => {
    const started = performance.now();
    ponder = await startPonder({
      databaseUrl: db.databaseUrl,
      schema: db.schema,
      // Batching allowed: each call in a batch must still count against the budget.
      chains: [
        { id: chainId, rpc: proxy.url, registry, maxRequestsPerSecond: BUDGET, rpcBatchSize: 100 },
      ],
      waitForReady: false,
    });
    // Reorg the tip while Ponder is still fetching the history: the last blocks' PinHash
    // events are replaced by one new event.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const replacement = await cidOf("budget replacement");
    const head = await anvil.publicClient.getBlockNumber();
    const lost = await anvil.publicClient.getLogs({
      address: storage,
      fromBlock: head - BigInt(REORG_DEPTH) + 1n,
      toBlock: head,
    });
    expect(lost.length).toBe(REORG_DEPTH);
    await anvil.testClient.reorg({
      depth: REORG_DEPTH,
      transactions: [
        [
          {
            from: anvil.account.address,
            to: storage,
            data: encodeFunctionData({
              abi: StorageAbi,
              functionName: "pinMany",
              args: [[replacement]],
            }),
          },
          0,
        ],
      ],
    });
    for (let i = EVENTS - REORG_DEPTH; i < EVENTS; i++)
      canonical.delete(await cidOf(`budget ${i}`));
    canonical.add(replacement);

    const deadline = Date.now() + 120_000;
    let cids: string[] = [];
    for (;;) {
      const events = await model.eventsAfter(null, 10_000).catch(() => []);
      cids = events.filter((e) => e.kind === "pin_hash").map((e) => e.cid as string);
      if (cids.length === canonical.size && cids.every((cid) => canonical.has(cid))) break;
      if (Date.now() > deadline)
        throw new Error(
          `rows never matched the canonical chain: ${cids.length} rows, ${canonical.size} expected\n${ponder.output().slice(-3_000)}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    backfillSeconds = (performance.now() - started) / 1000;
    expect(new Set(cids)).toEqual(canonical);
  }, 180_000);

  test("never exceeded, measured at the proxy over backfill and live sync", async () => {
    // Live sync for a few more seconds (polling, new blocks), still under the budget.
    await anvil.testClient.mine({ blocks: 5 });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const max = proxy.maxPerWindow(1_000);
    console.log(JSON.stringify({ calls: proxy.calls.length, maxPerSecond: max, backfillSeconds }));
    // On failure, the densest second's calls say what bunched up.
    if (max > BUDGET) {
      const calls = proxy.calls;
      for (let end = 0, start = 0; end < calls.length; end++) {
        while ((calls[end]?.at ?? 0) - (calls[start]?.at ?? 0) >= 1_000) start++;
        if (end - start + 1 === max) {
          console.log(
            calls
              .slice(start, end + 1)
              .map((c) => `${Math.round(c.at)} ${c.method}`)
              .join("\n"),
          );
          break;
        }
      }
    }
    expect(max).toBeLessThanOrEqual(BUDGET);
    // The budget was what paced the run: it was reached, and the calls needed seconds.
    expect(max).toBeGreaterThanOrEqual(BUDGET * 0.75);
    expect(proxy.calls.length).toBeGreaterThan(BUDGET * 4);
  });
});
