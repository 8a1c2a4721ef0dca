/**
 * Ponder ties its schema to a build id; a new id makes `ponder start` refuse the schema, so
 * an upgrade would re-index from block 0. The id hashes the config's contracts and ordering,
 * ponder.schema.ts and every file under src/ (node_modules/ponder/dist/esm/build/index.js).
 * This suite runs Ponder in a copy of the whole project, edits a file in every other layer
 * (core rules and config, db, backends, reconciler, API, audit, CLI) and restarts on the same
 * schema: it must resume, with the same build id and no re-index. Then it edits one file
 * under src/ and shows that Ponder refuses the schema: the check can fail.
 */
import { appendFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "kysely";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import { type Anvil, deployContracts, pinMany, startAnvil } from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

/** One file of each layer that is not an input of the indexer. */
const OUTSIDE_INPUTS = [
  "core/desired/derive.ts",
  "core/config/schema.ts",
  "db/desired/step.ts",
  "backends/backend.ts",
  "reconciler/main.ts",
  "api/app.ts",
  "audit/replay.ts",
  "cli/main.ts",
];

let anvil: Anvil;
let db: TestSchema;
let ponder: PonderProcess | undefined;
let kysely: ReturnType<typeof connectDatabase>;
let chainId: number;
let storage: `0x${string}`;

async function cidOf(label: string): Promise<string> {
  return CID.createV1(0x55, await sha256.digest(new TextEncoder().encode(label))).toString();
}

async function buildId(): Promise<string> {
  const result = await sql<{ build_id: string }>`
    select value->>'build_id' as build_id from ${sql.table(`${db.schema}._ponder_meta`)}
    where key = 'app'`.execute(kysely);
  const id = result.rows[0]?.build_id;
  if (id === undefined) throw new Error("no build id in _ponder_meta");
  return id;
}

async function eventCount(): Promise<number> {
  const result = await sql<{ n: string }>`
    select count(*)::text as n from ${sql.table(`${db.schema}.event`)}`.execute(kysely);
  return Number(result.rows[0]?.n);
}

/** Waits until Ponder has indexed anvil's current head. */
async function caughtUp(current: PonderProcess): Promise<void> {
  await current.waitForBlock(chainId, await anvil.publicClient.getBlockNumber({ cacheTime: 0 }));
}

beforeAll(async () => {
  chainId = uniqueChainId();
  anvil = await startAnvil({ chainId });
  db = await createTestSchema("bid");
  const deployed = await deployContracts(anvil);
  storage = deployed.storage;
  await pinMany(anvil, storage, [await cidOf("before")]);
  ponder = await startPonder({
    databaseUrl: db.databaseUrl,
    schema: db.schema,
    chains: [{ id: chainId, rpc: anvil.rpcUrl, registry: deployed.registry }],
    wholeProject: true,
  });
  kysely = connectDatabase({ databaseUrl: db.databaseUrl });
});

afterAll(async () => {
  await kysely?.destroy();
  await ponder?.stop();
  await anvil?.stop();
  await db?.drop();
});

describe("the indexer's build id", () => {
  it("does not change when files outside the indexer's inputs change: Ponder resumes its schema", async () => {
    if (ponder === undefined) throw new Error("ponder did not start");
    await caughtUp(ponder);
    const before = await buildId();
    const rows = await eventCount();
    expect(rows).toBe(2); // Register + PinHash

    for (const file of OUTSIDE_INPUTS) {
      await appendFile(join(ponder.root, file), "\n// edited by indexer-build-id.test.ts\n");
    }
    ponder = await ponder.restart();
    await caughtUp(ponder);
    expect(await buildId()).toBe(before);
    expect(ponder.output()).toMatch(/Detected crash recovery/);
    expect(ponder.output()).not.toMatch(/Reset internal database objects/);
    expect(await eventCount()).toBe(rows);

    // Still indexing on the resumed schema.
    await pinMany(anvil, storage, [await cidOf("after")]);
    await caughtUp(ponder);
    expect(await eventCount()).toBe(rows + 1);
  });

  it("changes when a file under src/ changes: Ponder refuses the schema (the check above can fail)", async () => {
    if (ponder === undefined) throw new Error("ponder did not start");
    await appendFile(join(ponder.root, "src", "cid.ts"), "\n// an indexer change\n");
    const restarted = ponder.restart();
    await expect(restarted).rejects.toThrow(/previously used by a different Ponder app/);
  });
});
