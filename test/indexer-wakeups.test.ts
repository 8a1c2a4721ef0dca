/**
 * The reconciler wakes when the indexer commits a live block with chain events in it. Ponder
 * announces each such block on its live-query channel; this test runs the real indexer on
 * anvil, so a Ponder upgrade that renames the channel or changes its payload fails here.
 */
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import pg from "pg";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { announcesChainEvents, indexerLiveChannel } from "@/db/desired/wakeup-channel.js";
import { type DesiredWakeups, listenForDesiredWork } from "@/db/desired/wakeups.js";
import { type Anvil, deployContracts, pinMany, startAnvil } from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";
import { until } from "./harness/until.js";

describe("wake-ups from the indexer", () => {
  let anvil: Anvil;
  let indexer: TestSchema;
  let ponder: PonderProcess;
  let storage: `0x${string}`;
  let serial = 0;

  const newCid = async () => {
    serial += 1;
    const digest = await sha256.digest(new TextEncoder().encode(`wake ${serial}`));
    return CID.createV1(0x55, digest).toString();
  };
  const head = async () => Number(await anvil.publicClient.getBlockNumber({ cacheTime: 0 }));

  beforeAll(async () => {
    anvil = await startAnvil({ chainId: uniqueChainId() });
    indexer = await createTestSchema("wakeidx");
    const deployed = await deployContracts(anvil);
    storage = deployed.storage;
    ponder = await startPonder({
      databaseUrl: indexer.databaseUrl,
      schema: indexer.schema,
      chains: [{ id: anvil.chainId, rpc: anvil.rpcUrl, registry: deployed.registry }],
    });
  }, 120_000);
  afterAll(async () => {
    await ponder?.stop();
    await anvil?.stop();
    await indexer?.drop();
  });

  it("Ponder announces a live block that wrote chain events on its live-query channel", async () => {
    const client = new pg.Client({ connectionString: indexer.databaseUrl });
    await client.connect();
    const payloads: string[] = [];
    client.on("notification", (message) => {
      if (message.channel === indexerLiveChannel(indexer.schema))
        payloads.push(message.payload ?? "");
    });
    try {
      await client.query(`listen ${client.escapeIdentifier(indexerLiveChannel(indexer.schema))}`);
      await pinMany(anvil, storage, [await newCid()]);
      await until(() => payloads.some(announcesChainEvents), 20_000);
      const withEvents = payloads.find(announcesChainEvents) as string;
      expect(JSON.parse(withEvents)).toContain("event");
    } finally {
      await client.end();
    }
  }, 30_000);

  it("wakes the reconciler for a block with a PinHash, not for empty blocks", async () => {
    let wakes = 0;
    let listening = false;
    const wakeups: DesiredWakeups = listenForDesiredWork({
      databaseUrl: indexer.databaseUrl,
      reconcilerSchema: "no_such_reconciler_schema",
      indexerSchema: indexer.schema,
      onWake: () => {
        wakes += 1;
      },
      onListening: (value) => {
        listening = value;
      },
      logger: pino({ level: "silent" }),
    });
    try {
      await until(() => listening && wakes === 1, 10_000); // the wake on (re)connecting
      // Empty blocks: Ponder indexes them (its status moves) and announces only its checkpoint.
      await anvil.testClient.mine({ blocks: 3 });
      await ponder.waitForBlock(anvil.chainId, BigInt(await head()), 20_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(wakes).toBe(1);

      await pinMany(anvil, storage, [await newCid()]);
      await until(() => wakes >= 2, 20_000);
      expect(wakes).toBe(2);
    } finally {
      await wakeups.close();
    }
  }, 60_000);
});
