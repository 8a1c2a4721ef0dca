/**
 * An eth_getLogs answer larger than viem's default cap on a response (10 MB). Ponder reads
 * the chain through our budgeted transport (ponder.config.ts), built on viem's `http`, which
 * since viem 2.4x refuses bodies over 10 MB; Ponder's retries then ask for the same range
 * again, forever. A busy range hits that: 50,000 PinHash logs answered 35 MB
 * (bench:indexer --events 50000 never finished). The transport now reads any size, as
 * Ponder's own client does. This test makes a history whose one getLogs answer is over the
 * cap (checked first, so the test cannot pass by being too small) and expects every row.
 */
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import { createReadModel } from "@/db/read-model/index.js";
import { type Anvil, deployContracts, pinBatches, startAnvil } from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

const TRANSACTIONS = 20;
const PER_TRANSACTION = 1_000;
const VIEM_DEFAULT_CAP = 10_485_760;

let anvil: Anvil;
let db: TestSchema;
let ponder: PonderProcess | undefined;
let registry: `0x${string}`;
let storage: `0x${string}`;
const emitted = new Set<string>();

beforeAll(async () => {
  anvil = await startAnvil({ chainId: uniqueChainId() });
  db = await createTestSchema("biglogs");
  ({ registry, storage } = await deployContracts(anvil));
  const batches: string[][] = [];
  for (let t = 0; t < TRANSACTIONS; t++) {
    const cids: string[] = [];
    for (let i = 0; i < PER_TRANSACTION; i++) {
      const digest = await sha256.digest(new TextEncoder().encode(`big ${t} ${i}`));
      cids.push(CID.createV1(0x55, digest).toString());
    }
    for (const cid of cids) emitted.add(cid);
    batches.push(cids);
  }
  await pinBatches(anvil, storage, batches);
  await anvil.testClient.mine({ blocks: 64 });
}, 180_000);

afterAll(async () => {
  await ponder?.stop();
  await anvil?.stop();
  await db?.drop();
});

describe("an eth_getLogs answer over 10 MB", () => {
  test("is read, and every PinHash of it indexed", async () => {
    // The precondition: one getLogs of the storage contract's whole history is over the cap.
    const answer = await fetch(anvil.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "eth_getLogs",
        params: [{ address: storage, fromBlock: "0x0", toBlock: "latest" }],
      }),
    });
    expect((await answer.arrayBuffer()).byteLength).toBeGreaterThan(VIEM_DEFAULT_CAP);

    ponder = await startPonder({
      databaseUrl: db.databaseUrl,
      schema: db.schema,
      chains: [{ id: anvil.chainId, rpc: anvil.rpcUrl, registry }],
      readyTimeoutMs: 120_000,
    });
    const kysely = connectDatabase({ databaseUrl: db.databaseUrl, applicationName: "biglogs" });
    try {
      const events = await createReadModel({ db: kysely, schema: db.schema }).eventsAfter(
        null,
        50_000,
      );
      const cids = events.filter((e) => e.kind === "pin_hash").map((e) => e.cid as string);
      expect(cids.length).toBe(emitted.size);
      expect(new Set(cids)).toEqual(emitted);
    } finally {
      await kysely.destroy();
    }
  }, 180_000);
});
