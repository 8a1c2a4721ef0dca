/**
 * The read model's queries on real Postgres, over tables laid out as Ponder 0.17 creates
 * them (the DDL below mirrors node_modules/ponder/dist/esm/database/index.js and the event
 * table ponder.schema.ts yields). End-to-end coverage with `ponder start` is in test/.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import { IndexerNotReadyError, MalformedEventRowError } from "@/db/read-model/errors.js";
import { createReadModel, type ReadModel } from "@/db/read-model/read-model.js";
import { createTestSchema, type TestSchema } from "@/test/harness/postgres.js";

const pad = (value: bigint | number, width: number) => value.toString().padStart(width, "0");
const MAX16 = "9".repeat(16);
/** A Ponder checkpoint; `end` makes it a block's end (every later field at its maximum). */
function checkpoint(
  ts: number,
  chain: number,
  block: number,
  end = true,
  tx = 0,
  index = 0,
): string {
  return end
    ? `${pad(ts, 10)}${pad(chain, 16)}${pad(block, 16)}${MAX16}9${MAX16}`
    : `${pad(ts, 10)}${pad(chain, 16)}${pad(block, 16)}${pad(tx, 16)}5${pad(index, 16)}`;
}

const STORAGE = "0x1111111111111111111111111111111111111111";
const OTHER = "0x2222222222222222222222222222222222222222";
const REGISTRY = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
const CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

let schema: TestSchema;
let empty: TestSchema;
let client: pg.Client;
const kysely = connectDatabase({
  databaseUrl: process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres",
  applicationName: "read-model-test",
});
let model: ReadModel;

type Row = [
  id: string,
  chain: number,
  block: number,
  kind: string,
  subject: string | null,
  raw: string | null,
  cid: string | null,
];

async function insert(rows: Row[]): Promise<void> {
  for (const [id, chain, block, kind, subject, raw, cid] of rows) {
    await client.query(
      `INSERT INTO "${schema.schema}"."event" VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
      [
        id,
        chain,
        block,
        `0x${pad(block, 64)}`,
        1_700_000_000 + block,
        `0x${"ab".repeat(32)}`,
        0,
        subject ? REGISTRY : STORAGE,
        kind,
        subject,
        raw,
        cid,
        raw !== null && cid === null ? "not_a_cid: test" : null,
      ],
    );
  }
}

beforeAll(async () => {
  schema = await createTestSchema("rm");
  empty = await createTestSchema("rm_empty");
  client = new pg.Client({ connectionString: schema.databaseUrl });
  await client.connect();
  const s = `"${schema.schema}"`;
  await client.query(`
    CREATE TABLE ${s}."event" (
      "id" text PRIMARY KEY, "chain_id" bigint NOT NULL, "block_number" bigint NOT NULL,
      "block_hash" text NOT NULL, "block_timestamp" bigint NOT NULL, "transaction_hash" text NOT NULL,
      "log_index" integer NOT NULL, "contract" text NOT NULL, "kind" text NOT NULL, "subject" text,
      "raw_cid" text, "cid" text, "invalid_reason" text);
    CREATE TABLE ${s}."_ponder_checkpoint" (
      "chain_name" TEXT PRIMARY KEY, "chain_id" BIGINT NOT NULL, "safe_checkpoint" VARCHAR(75) NOT NULL,
      "latest_checkpoint" VARCHAR(75) NOT NULL, "finalized_checkpoint" VARCHAR(75) NOT NULL);
    CREATE TABLE ${s}."_ponder_meta" ("key" TEXT PRIMARY KEY, "value" JSONB NOT NULL);
    INSERT INTO ${s}."_ponder_meta" VALUES ('app', '{"is_ready": 0, "is_locked": 1}');
  `);
  model = createReadModel({ db: kysely, schema: schema.schema });
});

afterAll(async () => {
  await client?.end();
  await kysely.destroy();
  await schema?.drop();
  await empty?.drop();
});

describe("read model on Postgres", () => {
  test("a schema Ponder has not filled yet is an IndexerNotReadyError, never an empty history", async () => {
    const fresh = createReadModel({ db: kysely, schema: empty.schema });
    await expect(fresh.eventsAfter(null, 10)).rejects.toBeInstanceOf(IndexerNotReadyError);
    await expect(fresh.progress()).rejects.toBeInstanceOf(IndexerNotReadyError);
    await expect(fresh.isReady()).rejects.toBeInstanceOf(IndexerNotReadyError);
    const missing = createReadModel({ db: kysely, schema: "no_such_schema_here" });
    await expect(missing.storageContracts()).rejects.toBeInstanceOf(IndexerNotReadyError);
  });

  test("events come back typed, in id order, after a cursor and up to a bound", async () => {
    await insert([
      [checkpoint(10, 1, 1, false, 0, 0), 1, 1, "register", STORAGE, null, null],
      [checkpoint(11, 2, 5, false, 0, 0), 2, 5, "register", OTHER, null, null],
      [checkpoint(12, 1, 2, false, 0, 1), 1, 2, "pin_hash", null, CID, CID],
      [checkpoint(13, 1, 3, false, 0, 0), 1, 3, "pin_hash", null, "garbage", null],
      [checkpoint(14, 1, 4, false, 0, 0), 1, 4, "unregister", STORAGE, null, null],
      [checkpoint(15, 2, 6, false, 0, 0), 2, 6, "pin_hash", null, `Qm${CID}`, CID],
    ]);
    const all = await model.eventsAfter(null, 100);
    expect(all.map((e) => [e.chainId, e.blockNumber, e.kind])).toEqual([
      [1, 1n, "register"],
      [2, 5n, "register"],
      [1, 2n, "pin_hash"],
      [1, 3n, "pin_hash"],
      [1, 4n, "unregister"],
      [2, 6n, "pin_hash"],
    ]);
    expect(typeof all[0]?.chainId).toBe("number");
    expect(typeof all[0]?.blockTimestamp).toBe("bigint");
    expect(all[3]).toMatchObject({
      rawCid: "garbage",
      cid: null,
      invalidReason: "not_a_cid: test",
    });
    const page = await model.eventsAfter(all[1]?.id ?? null, 2);
    expect(page.map((e) => e.id)).toEqual([all[2]?.id, all[3]?.id]);
    const bounded = await model.eventsAfter(null, 100, { upTo: all[2]?.id });
    expect(bounded).toHaveLength(3);
    expect((await model.eventsInBlocks(1, 2n, 3n)).map((e) => e.blockNumber)).toEqual([2n, 3n]);
    expect((await model.pinHashesOf(CID)).map((e) => e.chainId)).toEqual([1, 2]);
  });

  test("storage contracts: the last register/unregister per chain and contract decides", async () => {
    const contracts = await model.storageContracts();
    expect(contracts.map((c) => [c.chainId, c.contract, c.registered, c.sinceBlock])).toEqual([
      [1, STORAGE, false, 4n],
      [2, OTHER, true, 5n],
    ]);
  });

  test("progress decodes each chain's checkpoints; horizon is the lowest; isReady follows _ponder_meta", async () => {
    expect(await model.horizon()).toBeNull();
    expect(await model.progress()).toEqual([]);
    const s = `"${schema.schema}"`;
    await client.query(
      `INSERT INTO ${s}."_ponder_checkpoint" VALUES ($1,$2,$3,$4,$5), ($6,$7,$8,$9,$10)`,
      [
        "one",
        1,
        checkpoint(14, 1, 4),
        checkpoint(14, 1, 4),
        checkpoint(12, 1, 2),
        "two",
        2,
        checkpoint(15, 2, 6, false, 3, 0), // stopped inside block 6: only block 5 is complete
        checkpoint(15, 2, 6, false, 3, 0),
        checkpoint(20, 9, 100), // another chain's checkpoint (omnichain ordering): says nothing here
      ],
    );
    expect(await model.progress()).toEqual([
      { chainId: 1, indexedBlock: 4n, finalizedBlock: 2n },
      { chainId: 2, indexedBlock: 5n, finalizedBlock: 0n },
    ]);
    const horizon = await model.horizon();
    expect(horizon).toEqual({ finalized: checkpoint(12, 1, 2), latest: checkpoint(14, 1, 4) });
    const final = await model.eventsAfter(null, 100, { upTo: horizon?.finalized });
    expect(final.map((e) => [e.chainId, e.blockNumber])).toEqual([
      [1, 1n],
      [2, 5n],
      [1, 2n],
    ]);
    expect(await model.isReady()).toBe(false);
    await client.query(
      `UPDATE ${s}."_ponder_meta" SET value = '{"is_ready": 1}' WHERE key = 'app'`,
    );
    expect(await model.isReady()).toBe(true);
  });

  test("progress with the events above each chain's block: one statement, per-chain limits", async () => {
    // Chain 1 has events in blocks 1..4, chain 2 in 5..6 (the first test's rows).
    const both = await model.progressWithEventsAbove(
      new Map([
        [1, 1n],
        [2, 4n],
      ]),
      2,
    );
    expect(both.progress).toEqual(await model.progress());
    expect(both.above.get(1)?.map((e) => [e.blockNumber, e.kind])).toEqual([
      [2n, "pin_hash"],
      [3n, "pin_hash"],
    ]); // the limit, in id order: block 4's unregister is left for a later read
    expect(both.above.get(2)?.map((e) => [e.blockNumber, e.kind])).toEqual([
      [5n, "register"],
      [6n, "pin_hash"],
    ]);
    expect(both.above.get(1)?.[0]).toEqual((await model.eventsInBlocks(1, 2n, 2n))[0]); // the same typed event as the other reads give
    // A chain not asked for, and a chain with nothing above its block, are absent.
    const one = await model.progressWithEventsAbove(new Map([[1, 4n]]), 10);
    expect(one.progress).toEqual(await model.progress());
    expect([...one.above.keys()]).toEqual([]);
    const none = await model.progressWithEventsAbove(new Map(), 10);
    expect(none).toEqual({ progress: await model.progress(), above: new Map() });
    const fresh = createReadModel({ db: kysely, schema: empty.schema });
    await expect(fresh.progressWithEventsAbove(new Map([[1, 0n]]), 10)).rejects.toBeInstanceOf(
      IndexerNotReadyError,
    );
  });

  test("a row with an unknown kind is a MalformedEventRowError", async () => {
    await insert([[checkpoint(99, 1, 9, false, 0, 0), 1, 9, "mystery", null, null, null]]);
    await expect(model.eventsAfter(null, 100)).rejects.toBeInstanceOf(MalformedEventRowError);
  });
});
