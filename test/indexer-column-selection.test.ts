/**
 * Issue 14: the fourth part of patches/ponder+0.17.7.patch. Ponder 0.17 selects from its sync
 * store only the block and transaction columns the indexing functions read, but it settles
 * each function's columns only after 100 of its events, and selects the union over all of
 * them. Quasar's Registry handlers fire a handful of times, so the union stayed at every
 * column of every transaction for the whole backfill: the 400 KB input of each 5,000-CID
 * pinMany was read back for nothing (bench:indexer, packed: select_transactions 6.5 s summed).
 * Patched, every function's columns settle after the first batch.
 *
 * This test backfills a history with one Register, an Unregister and a second Register among
 * PinHashes, and reads Ponder's own debug line: every function settled, on the columns
 * Quasar's handlers read (block number, hash and timestamp, the transaction hash). Unpatched,
 * that line never comes. Every event is still indexed.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import { createReadModel } from "@/db/read-model/index.js";
import {
  type Anvil,
  deployContracts,
  pinBatches,
  register,
  startAnvil,
  unregister,
} from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

const PIN_TRANSACTIONS = 60;
const PINS_PER_TRANSACTION = 5;

let anvil: Anvil;
let db: TestSchema;
let ponder: PonderProcess | undefined;
let dir: string;
let registry: `0x${string}`;

async function cids(from: number, count: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) =>
      CID.createV1(
        0x55,
        await sha256.digest(new TextEncoder().encode(`columns ${from + i}`)),
      ).toString(),
    ),
  );
}

beforeAll(async () => {
  anvil = await startAnvil({ chainId: uniqueChainId() });
  db = await createTestSchema("columns");
  dir = await mkdtemp(join(tmpdir(), "quasar-columns-"));
  const deployed = await deployContracts(anvil);
  registry = deployed.registry;
  const batch = async (start: number) =>
    Promise.all(
      Array.from({ length: PIN_TRANSACTIONS / 2 }, (_, i) =>
        cids((start + i) * PINS_PER_TRANSACTION, PINS_PER_TRANSACTION),
      ),
    );
  await pinBatches(anvil, deployed.storage, await batch(0));
  // The rare events, in the middle of the history: they fire after the common ones settled.
  await unregister(anvil, registry, deployed.storage);
  await register(anvil, registry, deployed.storage);
  await pinBatches(anvil, deployed.storage, await batch(PIN_TRANSACTIONS / 2));
  // Past Ponder's finality (30 blocks here), so the whole history is backfill.
  await anvil.testClient.mine({ blocks: 64 });
}, 180_000);

afterAll(async () => {
  await ponder?.stop();
  await anvil?.stop();
  await db?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the backfill's column selection", () => {
  test("settles every indexing function's columns, rare ones included, and indexes every event", async () => {
    const logFile = join(dir, "ponder.log");
    ponder = await startPonder({
      databaseUrl: db.databaseUrl,
      schema: db.schema,
      chains: [{ id: anvil.chainId, rpc: anvil.rpcUrl, registry }],
      env: { PONDER_LOG_LEVEL: "debug" },
      logFile,
      readyTimeoutMs: 120_000,
    });
    const kysely = connectDatabase({ databaseUrl: db.databaseUrl, applicationName: "columns" });
    try {
      const events = await createReadModel({ db: kysely, schema: db.schema }).eventsAfter(
        null,
        10_000,
      );
      const kinds = events.map((event) => event.kind);
      expect(kinds.filter((kind) => kind === "pin_hash")).toHaveLength(
        PIN_TRANSACTIONS * PINS_PER_TRANSACTION,
      );
      expect(kinds.filter((kind) => kind === "register")).toHaveLength(2);
      expect(kinds.filter((kind) => kind === "unregister")).toHaveLength(1);
    } finally {
      await kysely.destroy();
    }
    await ponder.stop();
    ponder = undefined;

    const resolved = (await readFile(logFile, "utf8"))
      .split("\n")
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as Record<string, unknown>];
        } catch {
          return [];
        }
      })
      .filter((entry) => entry.msg === "Resolved event property access");
    // Unpatched: never logged, the Registry handlers being short of 100 events each.
    expect(resolved.length).toBeGreaterThan(0);
    // What Quasar's handlers read: the block's number, hash and timestamp, the transaction's
    // hash. Ponder adds the columns it always keeps (transaction index, from, to, type); the
    // input is not among them.
    expect(resolved[0]).toMatchObject({ block_count: 3, transaction_count: 1 });
  }, 240_000);
});
