/**
 * Two registries on two chains (two anvils with different chain ids) indexed by one Ponder:
 * each chain's rows carry its id, registrations do not leak across chains, and progress
 * and finality are reported per chain.
 */
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import type { Address } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import { createReadModel, type ReadModel } from "@/db/read-model/index.js";
import {
  type Anvil,
  deployContracts,
  deployStorage,
  pinMany,
  register,
  startAnvil,
} from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

async function cidOf(label: string): Promise<string> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(label))).toString();
}

type Side = { anvil: Anvil; chainId: number; registry: Address; storage: Address };
let a: Side;
let b: Side;
let db: TestSchema;
let ponder: PonderProcess;
let kysely: ReturnType<typeof connectDatabase>;
let model: ReadModel;

async function side(): Promise<Side> {
  const chainId = uniqueChainId();
  const anvil = await startAnvil({ chainId });
  const { registry, storage } = await deployContracts(anvil);
  return { anvil, chainId, registry, storage };
}

async function caughtUp(...sides: Side[]): Promise<void> {
  for (const s of sides) {
    await ponder.waitForBlock(
      s.chainId,
      await s.anvil.publicClient.getBlockNumber({ cacheTime: 0 }),
    );
  }
}

beforeAll(async () => {
  [a, b] = await Promise.all([side(), side()]);
  db = await createTestSchema("multi");
  ponder = await startPonder({
    databaseUrl: db.databaseUrl,
    schema: db.schema,
    chains: [
      { id: a.chainId, rpc: a.anvil.rpcUrl, registry: a.registry },
      { id: b.chainId, rpc: b.anvil.rpcUrl, registry: b.registry, name: "second" },
    ],
  });
  kysely = connectDatabase({
    databaseUrl: db.databaseUrl,
    applicationName: "multichain-test",
  });
  model = createReadModel({ db: kysely, schema: db.schema });
});

afterAll(async () => {
  await kysely?.destroy();
  await ponder?.stop();
  await Promise.all([a?.anvil.stop(), b?.anvil.stop()]);
  await db?.drop();
});

describe("two chains", () => {
  test("each chain's registry, storage and pins are recorded under its own chain id", async () => {
    const [cidA, cidB] = [await cidOf("chain a"), await cidOf("chain b")];
    await Promise.all([pinMany(a.anvil, a.storage, [cidA]), pinMany(b.anvil, b.storage, [cidB])]);
    await caughtUp(a, b);
    const events = await model.eventsAfter(null, 1_000);
    const of = (s: Side) =>
      events
        .filter((e) => e.chainId === s.chainId)
        .map((e) => [e.kind, e.contract, e.subject, e.cid]);
    expect(of(a)).toEqual([
      ["register", a.registry.toLowerCase(), a.storage.toLowerCase(), null],
      ["pin_hash", a.storage.toLowerCase(), null, cidA],
    ]);
    expect(of(b)).toEqual([
      ["register", b.registry.toLowerCase(), b.storage.toLowerCase(), null],
      ["pin_hash", b.storage.toLowerCase(), null, cidB],
    ]);
    expect(events).toHaveLength(4);
    // Ids sort all chains into one order.
    expect(events.map((e) => e.id)).toEqual(events.map((e) => e.id).sort());
  });

  test("a contract registered on one chain is not indexed on the other", async () => {
    // Same deployer and nonce on both anvils: a contract deployed on chain b lands at an
    // address chain a also has. Registering it on b only must not make a's copy count.
    const extraA = await deployStorage(a.anvil);
    const extraB = await deployStorage(b.anvil);
    expect(extraA).toBe(extraB);
    await register(b.anvil, b.registry, extraB);
    const [onA, onB] = [await cidOf("extra on a"), await cidOf("extra on b")];
    await pinMany(a.anvil, extraA, [onA]);
    await pinMany(b.anvil, extraB, [onB]);
    await caughtUp(a, b);
    const cids = (await model.eventsAfter(null, 1_000)).map((e) => e.cid);
    expect(cids).toContain(onB);
    expect(cids).not.toContain(onA);
    const contracts = await model.storageContracts();
    expect(contracts.map((c) => [c.chainId, c.contract])).toEqual(
      [
        [a.chainId, a.storage.toLowerCase()],
        [b.chainId, b.storage.toLowerCase()],
        [b.chainId, extraB.toLowerCase()],
      ].sort((x, y) => Number(x[0]) - Number(y[0]) || String(x[1]).localeCompare(String(y[1]))),
    );
  });

  test("progress and finality are per chain; the horizon is the lower of the two", async () => {
    // Only chain a moves far enough to finalize anything.
    await a.anvil.testClient.mine({ blocks: 70 });
    await caughtUp(a, b);
    const deadline = Date.now() + 20_000;
    let progress = await model.progress();
    while (
      Date.now() < deadline &&
      (progress.find((p) => p.chainId === a.chainId)?.finalizedBlock ?? 0n) === 0n
    ) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      progress = await model.progress();
    }
    const pa = progress.find((p) => p.chainId === a.chainId);
    const pb = progress.find((p) => p.chainId === b.chainId);
    expect(pa?.indexedBlock).toBe(await a.anvil.publicClient.getBlockNumber({ cacheTime: 0 }));
    expect(pb?.indexedBlock).toBe(await b.anvil.publicClient.getBlockNumber({ cacheTime: 0 }));
    expect(pa?.finalizedBlock).toBeGreaterThan(0n);
    expect(pb?.finalizedBlock).toBe(0n);
    // Chain b has finalized nothing, so the horizon (the lowest finalized checkpoint) keeps
    // every row of b out, and rows of a only up to a's finalized block.
    const horizon = await model.horizon();
    const final = await model.eventsAfter(null, 1_000, { upTo: horizon?.finalized });
    expect(final.filter((e) => e.chainId === b.chainId)).toEqual([]);
    expect(
      final.every((e) => e.chainId !== a.chainId || e.blockNumber <= (pa?.finalizedBlock ?? 0n)),
    ).toBe(true);
  });
});
