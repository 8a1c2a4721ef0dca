/**
 * Reorg safety on a real chain: anvil's `anvil_reorg` and `evm_snapshot`/`evm_revert`
 * replace blocks Ponder has already indexed. Rows of reorged blocks must disappear, the
 * replacing blocks' rows appear, and the finalized block the read model reports must never
 * include a block that was later reorged.
 */
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { type Address, encodeFunctionData } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { StorageAbi } from "@/abis/index.js";
import { connectDatabase } from "@/db/connect.js";
import { createReadModel, type ReadModel } from "@/db/read-model/index.js";
import type { ChainEvent } from "@/src/events.js";
import { type Anvil, deployContracts, pinMany, startAnvil } from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

async function cidOf(label: string): Promise<string> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(label))).toString();
}

let anvil: Anvil;
let db: TestSchema;
let ponder: PonderProcess;
let kysely: ReturnType<typeof connectDatabase>;
let model: ReadModel;
let chainId: number;
let storage: Address;

/** Every finalized block the read model reported, with when; checked against each reorg. */
const finalizedSamples: { at: number; finalized: bigint }[] = [];
const reorgs: { at: number; fromBlock: bigint }[] = [];
let sampling = true;
let sampler: Promise<void> | undefined;

async function sampleFinality(): Promise<void> {
  while (sampling) {
    const [progress] = await model.progress().catch(() => []);
    if (progress) finalizedSamples.push({ at: Date.now(), finalized: progress.finalizedBlock });
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls the read model until `predicate` holds on all rows. */
async function eventsWhen(
  predicate: (events: ChainEvent[]) => boolean,
  timeoutMs = 20_000,
): Promise<ChainEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = await model.eventsAfter(null, 10_000);
    if (predicate(events)) return events;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out; rows: ${JSON.stringify(events.map((e) => [e.blockNumber.toString(), e.kind, e.cid]))}\n${ponder.output().slice(-3000)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

const cidsOf = (events: ChainEvent[]) =>
  events.filter((e) => e.kind === "pin_hash").map((e) => e.cid);

/** A pinMany transaction for anvil_reorg to mine into a replacement block. */
function pinTx(cids: string[]) {
  return {
    from: anvil.account.address,
    to: storage,
    data: encodeFunctionData({ abi: StorageAbi, functionName: "pinMany", args: [cids] }),
  };
}

async function head(): Promise<bigint> {
  return anvil.publicClient.getBlockNumber({ cacheTime: 0 });
}

beforeAll(async () => {
  chainId = uniqueChainId();
  anvil = await startAnvil({ chainId });
  db = await createTestSchema("reorg");
  const deployed = await deployContracts(anvil);
  storage = deployed.storage;
  // Start with finality well above zero (Ponder's depth is 30 blocks), so the check that
  // it never reaches a reorged block compares real numbers.
  await anvil.testClient.mine({ blocks: 70 });
  ponder = await startPonder({
    databaseUrl: db.databaseUrl,
    schema: db.schema,
    chains: [{ id: chainId, rpc: anvil.rpcUrl, registry: deployed.registry }],
  });
  kysely = connectDatabase({
    databaseUrl: db.databaseUrl,
    applicationName: "reorg-test",
  });
  model = createReadModel({ db: kysely, schema: db.schema });
  await ponder.waitForBlock(chainId, await head());
  sampler = sampleFinality();
});

afterAll(async () => {
  sampling = false;
  await sampler;
  await kysely?.destroy();
  await ponder?.stop();
  await anvil?.stop();
  await db?.drop();
});

describe("reorgs", () => {
  test("a PinHash reorged out (anvil_reorg, depth 1) disappears; the replacing block's appears", async () => {
    const lost = await cidOf("reorged out");
    const kept = await cidOf("replacement");
    await pinMany(anvil, storage, [lost]);
    const block = await head();
    const before = await eventsWhen((events) => cidsOf(events).includes(lost));
    const oldHash = before.find((e) => e.cid === lost)?.blockHash;

    reorgs.push({ at: Date.now(), fromBlock: block });
    await anvil.testClient.reorg({ depth: 1, transactions: [[pinTx([kept]), 0]] });
    await anvil.testClient.mine({ blocks: 1 });

    const after = await eventsWhen(
      (events) => !cidsOf(events).includes(lost) && cidsOf(events).includes(kept),
    );
    const replacement = after.find((e) => e.cid === kept);
    const canonical = await anvil.publicClient.getBlock({ blockNumber: block });
    expect(replacement?.blockNumber).toBe(block);
    expect(replacement?.blockHash).toBe(canonical.hash);
    expect(replacement?.blockHash).not.toBe(oldHash);
    expect(after.filter((e) => e.kind === "pin_hash")).toHaveLength(1);
  });

  test("a PinHash undone by evm_snapshot/evm_revert disappears; the new branch's appears", async () => {
    const lost = await cidOf("reverted");
    const kept = await cidOf("new branch");
    const snapshot = await anvil.testClient.snapshot();
    await pinMany(anvil, storage, [lost]);
    const block = await head();
    await eventsWhen((events) => cidsOf(events).includes(lost));

    reorgs.push({ at: Date.now(), fromBlock: block });
    await anvil.testClient.revert({ id: snapshot });
    await pinMany(anvil, storage, [kept]);
    await anvil.testClient.mine({ blocks: 1 });

    const after = await eventsWhen(
      (events) => !cidsOf(events).includes(lost) && cidsOf(events).includes(kept),
    );
    const row = after.find((e) => e.cid === kept);
    expect(row?.blockNumber).toBe(block);
    expect(row?.blockHash).toBe((await anvil.publicClient.getBlock({ blockNumber: block })).hash);
  });

  test("a reorg 7 blocks deep removes every row in its range and keeps the rows below it", async () => {
    await anvil.testClient.mine({ blocks: 3 });
    const lost = [await cidOf("deep 1"), await cidOf("deep 2")];
    const kept = await cidOf("deep replacement");
    await pinMany(anvil, storage, [lost[0] as string]);
    await anvil.testClient.mine({ blocks: 2 });
    await pinMany(anvil, storage, [lost[1] as string]);
    await anvil.testClient.mine({ blocks: 2 });
    const top = await head();
    const before = await eventsWhen((events) => lost.every((cid) => cidsOf(events).includes(cid)));
    const survivors = before.filter((e) => !lost.includes(e.cid ?? ""));

    const depth = 7;
    const fromBlock = top - BigInt(depth) + 1n;
    reorgs.push({ at: Date.now(), fromBlock });
    await anvil.testClient.reorg({ depth, transactions: [[pinTx([kept]), 2]] });
    await anvil.testClient.mine({ blocks: 1 });

    const after = await eventsWhen(
      (events) =>
        cidsOf(events).includes(kept) && !lost.some((cid) => cidsOf(events).includes(cid)),
    );
    expect(after.filter((e) => e.blockNumber < fromBlock)).toEqual(survivors);
    const replacement = after.find((e) => e.cid === kept);
    expect(replacement?.blockNumber).toBe(fromBlock + 2n);
    expect(replacement?.blockHash).toBe(
      (await anvil.publicClient.getBlock({ blockNumber: fromBlock + 2n })).hash,
    );
  });

  test("finalized blocks never included a reorged block, and every finalized row is canonical", async () => {
    // Push finality past every reorged block: Ponder finalizes once the head is 60 blocks ahead.
    await anvil.testClient.mine({ blocks: 70 });
    const tip = await head();
    await ponder.waitForBlock(chainId, tip, 60_000);
    const deadline = Date.now() + 20_000;
    let finalized = 0n;
    while (Date.now() < deadline) {
      finalized = (await model.progress())[0]?.finalizedBlock ?? 0n;
      if (finalized >= tip - 60n) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const [lowestReorged = tip] = reorgs.map((r) => r.fromBlock).sort((a, b) => (a < b ? -1 : 1));
    expect(finalized).toBeGreaterThan(lowestReorged);

    // Before each reorg, the reported finalized block was below the reorged range.
    expect(finalizedSamples.length).toBeGreaterThan(10);
    expect(
      finalizedSamples
        .filter((sample) => sample.at <= (reorgs[0]?.at ?? 0))
        .every((s) => s.finalized > 0n),
    ).toBe(true);
    for (const reorg of reorgs) {
      const earlier = finalizedSamples.filter((sample) => sample.at <= reorg.at);
      expect(earlier.length).toBeGreaterThan(0);
      for (const sample of earlier) expect(sample.finalized).toBeLessThan(reorg.fromBlock);
    }

    // Every row at or below the finality horizon sits in the canonical chain.
    const horizon = await model.horizon();
    const final = await model.eventsAfter(null, 10_000, { upTo: horizon?.finalized });
    expect(final.length).toBeGreaterThan(3);
    for (const event of final) {
      const block = await anvil.publicClient.getBlock({ blockNumber: event.blockNumber });
      expect(event.blockHash).toBe(block.hash);
    }
    // And exactly the surviving pins remain, once each.
    const pins = cidsOf(await model.eventsAfter(null, 10_000));
    expect(pins).toEqual([
      await cidOf("replacement"),
      await cidOf("new branch"),
      await cidOf("deep replacement"),
    ]);
  });
});
