/**
 * Issue 9.1: an RPC node that stalls (anvil frozen with SIGSTOP for 30 s, then thawed) must
 * not wedge the indexer. Before the fix Ponder's indexed block stayed put for minutes while
 * the head advanced, and its log filled with "Unable to find available JSON-RPC provider".
 */
import { afterAll, beforeAll, expect, test } from "vitest";
import { type Anvil, deployContracts, startAnvil } from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

const STALL_MS = 30_000;
const CATCH_UP_MS = 60_000;

let anvil: Anvil;
let db: TestSchema;
let ponder: PonderProcess;
let chainId: number;

async function indexedBlock(): Promise<number> {
  const status = await ponder.status();
  const chain = Object.values(status).find((each) => each.id === chainId);
  return chain?.block.number ?? -1;
}

beforeAll(async () => {
  chainId = uniqueChainId();
  anvil = await startAnvil({ chainId, blockTime: 1 });
  db = await createTestSchema("stall");
  const { registry } = await deployContracts(anvil);
  ponder = await startPonder({
    databaseUrl: db.databaseUrl,
    schema: db.schema,
    chains: [{ id: chainId, rpc: anvil.rpcUrl, registry }],
  });
}, 120_000);

afterAll(async () => {
  await ponder?.stop();
  await anvil?.stop();
  await db?.drop();
});

test(
  "after a 30 s RPC stall the indexer catches up with the head within a minute",
  async () => {
    // Frozen right after the backfill, while live indexing starts: requests are in flight
    // and polls keep coming, which is what drove Ponder's limiter to its floor.
    anvil.pause();
    try {
      await new Promise((resolve) => setTimeout(resolve, STALL_MS));
    } finally {
      anvil.resume();
    }
    const resumedAt = Date.now();
    // The head keeps moving (interval mining); the indexer must reach where it was at thaw
    // time plus a few blocks, i.e. follow the chain again, not only answer.
    const headAtResume = Number(await anvil.publicClient.getBlockNumber());
    await ponder.waitForBlock(chainId, headAtResume + 5, CATCH_UP_MS);
    const lag = Number(await anvil.publicClient.getBlockNumber()) - (await indexedBlock());
    expect(lag).toBeLessThanOrEqual(5);
    expect(Date.now() - resumedAt).toBeLessThan(CATCH_UP_MS);
    // Ponder's own limiter never throttled this chain (the transport opts out of it).
    expect(ponder.output()).not.toMatch(/Unable to find available JSON-RPC provider/);
  },
  STALL_MS + CATCH_UP_MS + 60_000,
);
