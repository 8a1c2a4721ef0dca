/**
 * The indexer against real parts: anvil, Postgres and `ponder start`, read back through the
 * read model. One anvil (automine: one block per transaction) and one Ponder for the suite;
 * the tests run in order and each waits until Ponder has indexed the block it produced.
 */
import { CID } from "multiformats/cid";
import { type Address, encodeAbiParameters, type Hex, toFunctionSelector } from "viem";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import { createReadModel, type ReadModel } from "@/db/read-model/index.js";
import type { ChainEvent } from "@/src/events.js";
import {
  type Anvil,
  deployContracts,
  deployStorage,
  pinMany,
  register,
  startAnvil,
  unregister,
} from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

const V0 = "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u";
const V0_AS_V1 = CID.parse(V0).toV1().toString();
/** A CIDv1 base32 string (raw codec) for any label. */
async function cidOf(label: string): Promise<string> {
  const { sha256 } = await import("multiformats/hashes/sha2");
  const digest = await sha256.digest(new TextEncoder().encode(label));
  return CID.createV1(0x55, digest).toString();
}

let anvil: Anvil;
let db: TestSchema;
let ponder: PonderProcess;
let kysely: ReturnType<typeof connectDatabase>;
let model: ReadModel;
let chainId: number;
let registry: Address;
let storage: Address;

/** Waits until Ponder has indexed the chain's current head, then returns all rows. */
async function indexedEvents(): Promise<ChainEvent[]> {
  const head = await anvil.publicClient.getBlockNumber({ cacheTime: 0 });
  await ponder.waitForBlock(chainId, head);
  return model.eventsAfter(null, 10_000);
}

beforeAll(async () => {
  chainId = uniqueChainId();
  anvil = await startAnvil({ chainId });
  db = await createTestSchema("idx");
  ({ registry, storage } = await deployContracts(anvil));
  ponder = await startPonder({
    databaseUrl: db.databaseUrl,
    schema: db.schema,
    chains: [{ id: chainId, rpc: anvil.rpcUrl, registry }],
  });
  kysely = connectDatabase({
    databaseUrl: db.databaseUrl,
    applicationName: "indexer-test",
  });
  model = createReadModel({ db: kysely, schema: db.schema });
});

afterAll(async () => {
  await kysely?.destroy();
  await ponder?.stop();
  await anvil?.stop();
  await db?.drop();
});

describe("indexer", () => {
  test("Register is recorded with the registry as emitter and the storage contract lowercase", async () => {
    const events = await indexedEvents();
    expect(events).toHaveLength(1);
    const [registration] = events;
    expect(registration).toMatchObject({
      chainId,
      kind: "register",
      contract: registry.toLowerCase(),
      subject: storage.toLowerCase(),
      rawCid: null,
      cid: null,
    });
    const block = await anvil.publicClient.getBlock({ blockNumber: registration?.blockNumber });
    expect(registration?.blockHash).toBe(block.hash);
    expect(registration?.blockTimestamp).toBe(block.timestamp);
    expect(await model.storageContracts()).toEqual([
      expect.objectContaining({ chainId, contract: storage.toLowerCase(), registered: true }),
    ]);
  });

  test("PinHash of a valid CID is normalised to CIDv1 base32", async () => {
    const v1 = await cidOf("one");
    const hash = await pinMany(anvil, storage, [V0, v1]);
    const pins = (await indexedEvents()).filter((event) => event.kind === "pin_hash");
    expect(pins.map((pin) => [pin.rawCid, pin.cid, pin.invalidReason])).toEqual([
      [V0, V0_AS_V1, null],
      [v1, v1, null],
    ]);
    expect(
      pins.every((pin) => pin.transactionHash === hash && pin.contract === storage.toLowerCase()),
    ).toBe(true);
    expect(pins[0]?.logIndex).toBeLessThan(pins[1]?.logIndex ?? 0);
    expect((await model.pinHashesOf(V0_AS_V1)).map((pin) => pin.rawCid)).toEqual([V0]);
  });

  test("bad data is recorded as invalid with a reason and never stops indexing", async () => {
    const valid = await cidOf("after the garbage");
    const bad = [
      "",
      "garbage",
      "x".repeat(10_240),
      `/ipfs/${V0_AS_V1}`,
      `${V0_AS_V1}/index.html`,
      ` ${V0_AS_V1}`,
      "héllo wörld 🚀",
      "\uD800", // a lone surrogate: viem encodes it as U+FFFD's UTF-8
      `${V0_AS_V1}\u0000`,
    ];
    const before = (await indexedEvents()).length;
    await pinMany(anvil, storage, [...bad, valid]);
    const rows = (await indexedEvents()).slice(before);
    expect(rows.map((row) => row.rawCid)).toEqual([
      ...bad.slice(0, 7),
      "\uFFFD",
      `${V0_AS_V1}\uFFFD`, // Postgres text cannot hold NUL
      valid,
    ]);
    expect(rows.map((row) => row.invalidReason?.split(":")[0] ?? null)).toEqual([
      "empty",
      "not_a_cid",
      "too_long",
      "has_path",
      "has_path",
      "whitespace",
      "whitespace",
      "not_a_cid",
      "not_a_cid",
      null,
    ]);
    expect(rows.slice(0, -1).every((row) => row.cid === null)).toBe(true);
    expect(rows.at(-1)?.cid).toBe(valid);
  });

  test("bytes that are not UTF-8 are recorded (as U+FFFD), not dropped", async () => {
    // pinMany(string[]) encodes exactly like bytes[], so raw bytes can be sent under its selector.
    const selector = toFunctionSelector("pinMany(string[])");
    const data =
      `${selector}${encodeAbiParameters([{ type: "bytes[]" }], [["0xfffe61", "0x00c3"]]).slice(2)}` as Hex;
    const before = (await indexedEvents()).length;
    const hash = await anvil.walletClient.sendTransaction({ to: storage, data });
    const receipt = await anvil.publicClient.waitForTransactionReceipt({ hash });
    expect(receipt.status).toBe("success");
    const rows = (await indexedEvents()).slice(before);
    expect(rows).toHaveLength(2);
    expect(
      rows.every(
        (row) => row.kind === "pin_hash" && row.cid === null && row.invalidReason !== null,
      ),
    ).toBe(true);
    expect(rows[0]?.rawCid).toContain("\uFFFD");
    expect(rows[1]?.rawCid).not.toContain("\u0000");
  });

  test("PinHash from a contract that was never registered is not indexed", async () => {
    const stranger = await deployStorage(anvil);
    await pinMany(anvil, stranger, [await cidOf("stranger")]);
    // A later registered pin proves Ponder went past the stranger's block.
    const marker = await cidOf("marker");
    await pinMany(anvil, storage, [marker]);
    const events = await indexedEvents();
    expect(events.some((event) => event.contract === stranger.toLowerCase())).toBe(false);
    expect(events.at(-1)?.cid).toBe(marker);
  });

  test("Unregister, PinHash after Unregister, and re-Register are all recorded", async () => {
    const before = (await indexedEvents()).length;
    await unregister(anvil, registry, storage);
    const late = await cidOf("after unregister");
    await pinMany(anvil, storage, [late]);
    await register(anvil, registry, storage);
    const rows = (await indexedEvents()).slice(before);
    expect(rows.map((row) => [row.kind, row.subject, row.cid])).toEqual([
      ["unregister", storage.toLowerCase(), null],
      // Still indexed: the factory's child list only grows; the derivation decides what it means.
      ["pin_hash", null, late],
      ["register", storage.toLowerCase(), null],
    ]);
    const [standing] = await model.storageContracts();
    expect(standing).toMatchObject({
      contract: storage.toLowerCase(),
      registered: true,
      sinceEventId: rows[2]?.id,
    });
  });

  test("a second storage contract registered later is discovered from its Register onward", async () => {
    const second = await deployStorage(anvil);
    const early = await cidOf("before its registration");
    await pinMany(anvil, second, [early]);
    await register(anvil, registry, second);
    const later = await cidOf("second storage");
    await pinMany(anvil, second, [later]);
    const fromSecond = (await indexedEvents()).filter(
      (event) => event.contract === second.toLowerCase(),
    );
    // Ponder matches a factory child's logs only from the block it was discovered in
    // (runtime/filter.js isAddressMatched), in backfill and live alike: the early pin is not indexed.
    expect(fromSecond.map((event) => event.cid)).toEqual([later]);
    expect(fromSecond.map((event) => event.cid)).not.toContain(early);
    expect((await model.storageContracts()).map((status) => status.contract).sort()).toEqual(
      [storage.toLowerCase(), second.toLowerCase()].sort(),
    );
  });

  test("ids are unique, ordered, and events come in chain order", async () => {
    const events = await indexedEvents();
    const ids = events.map((event) => event.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
    for (let i = 1; i < events.length; i++) {
      const [a, b] = [events[i - 1] as ChainEvent, events[i] as ChainEvent];
      expect(
        a.blockNumber < b.blockNumber ||
          (a.blockNumber === b.blockNumber && a.logIndex < b.logIndex),
      ).toBe(true);
    }
    const page = await model.eventsAfter(ids[2] ?? null, 3);
    expect(page.map((event) => event.id)).toEqual(ids.slice(3, 6));
  });

  test("progress reports the indexed head, and finality 30 blocks behind", async () => {
    // Ponder moves its finalized block once the head is 2 x 30 blocks past it.
    await anvil.testClient.mine({ blocks: 70 });
    const head = await anvil.publicClient.getBlockNumber({ cacheTime: 0 });
    await ponder.waitForBlock(chainId, head);
    const [progress] = await model.progress();
    expect(progress?.chainId).toBe(chainId);
    expect(progress?.indexedBlock).toBe(head);
    // Ponder's finality depth for unknown chains is 30 blocks.
    expect(progress?.finalizedBlock).toBeGreaterThan(0n);
    expect(progress?.finalizedBlock).toBeLessThanOrEqual(head - 30n);
    const horizon = await model.horizon();
    const all = await model.eventsAfter(null, 10_000);
    const final = await model.eventsAfter(null, 10_000, { upTo: horizon?.finalized });
    expect(final.every((event) => event.blockNumber <= (progress?.finalizedBlock ?? 0n))).toBe(
      true,
    );
    expect(final).toEqual(
      all.filter((event) => event.blockNumber <= (progress?.finalizedBlock ?? 0n)),
    );
    expect(await model.isReady()).toBe(true);
  });

  test("a restarted indexer on the same schema neither duplicates nor loses rows", async () => {
    const before = await indexedEvents();
    ponder = await ponder.restart();
    const extra = await cidOf("after restart");
    await pinMany(anvil, storage, [extra]);
    const after = await indexedEvents();
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.slice(before.length).map((event) => event.cid)).toEqual([extra]);
  });
  test("a fresh indexer backfilling the same chain writes exactly the rows the live one did", async () => {
    const live = await indexedEvents();
    const other = await createTestSchema("idx_replay");
    const replay = await startPonder({
      databaseUrl: other.databaseUrl,
      schema: other.schema,
      chains: [{ id: chainId, rpc: anvil.rpcUrl, registry }],
    });
    try {
      await replay.waitForBlock(chainId, await anvil.publicClient.getBlockNumber({ cacheTime: 0 }));
      const replayed = await createReadModel({ db: kysely, schema: other.schema }).eventsAfter(
        null,
        10_000,
      );
      expect(replayed).toEqual(live);
    } finally {
      await replay.stop();
      await other.drop();
    }
  });
});
