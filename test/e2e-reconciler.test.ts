/**
 * End to end on real parts: PinHash on anvil → `ponder start` (the indexer) → the desired
 * store → the engine → pinned on a Kubo daemon and an embedded helia node; then Unregister,
 * made final by mining past anvil's 30-block finality, → released once its block time plus
 * the TTL has passed.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import type { Address } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContentCapableBackend } from "@/backends/backend.js";
import { type Anvil, deployContracts, pinMany, startAnvil, unregister } from "./harness/anvil.js";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

const TTL_MS = 3_000;
/**
 * Ponder's finality on anvil is 30 blocks, but its realtime sync moves the finalized block only
 * once the head is more than twice that depth past it: mine 70 to make everything before final.
 */
const FINALITY_BLOCKS = 70;

describe("PinHash on chain to pinned on both backends, Unregister to released", () => {
  let anvil: Anvil;
  let indexer: TestSchema;
  let ponder: PonderProcess;
  let daemon: IpfsDaemon;
  let dir: string;
  let f: EngineFixture;
  let kubo: ContentCapableBackend;
  let helia: ContentCapableBackend;
  let chainId: number;
  let registry: Address;
  let storage: Address;
  const cids: CID[] = [];

  beforeAll(async () => {
    chainId = uniqueChainId();
    anvil = await startAnvil({ chainId });
    indexer = await createTestSchema("e2ei");
    ({ registry, storage } = await deployContracts(anvil));
    ponder = await startPonder({
      databaseUrl: indexer.databaseUrl,
      schema: indexer.schema,
      chains: [{ id: chainId, rpc: anvil.rpcUrl, registry }],
    });
    daemon = await startIpfsDaemon();
    dir = await mkdtemp(join(tmpdir(), "quasar-e2e-reconciler-"));
    // The content exists on the (offline) daemon only; helia gets it from there as a CAR.
    for (let i = 0; i < 2; i++) {
      const bytes = new Uint8Array(randomBytes(256));
      cids.push(CID.createV1(raw.code, await sha256.digest(bytes)));
      await daemon.rpc(
        "block/put",
        { format: "raw", "cid-codec": "raw", pin: "false" },
        { field: "file", bytes },
      );
    }
    f = await createEngineFixture({
      backends: [daemon.connectionString, `helia://${join(dir, "helia")}?offline=true`],
      indexerSchema: indexer.schema,
      env: { QUASAR_PIN_TTL: `${TTL_MS}ms` },
    });
    [kubo, helia] = f.backends as [ContentCapableBackend, ContentCapableBackend];
  });
  afterAll(async () => {
    await f?.close();
    await ponder?.stop();
    await anvil?.stop();
    await daemon?.destroy();
    await indexer?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const pinnedOn = async (backend: ContentCapableBackend, cid: CID) =>
    (await backend.pins.getPin(cid, {})) !== undefined;
  const pinnedEverywhere = async () => {
    for (const cid of cids) {
      if (!(await pinnedOn(kubo, cid)) || !(await pinnedOn(helia, cid))) return false;
    }
    return true;
  };

  it("pins a PinHash eagerly while pending, on both backends", async () => {
    await pinMany(
      anvil,
      storage,
      cids.map((cid) => cid.toString()),
    );
    expect(await f.until(pinnedEverywhere, 60_000)).toBe(true);
    const reasons = await f.store.reasonsFor(cids[0]?.toString() ?? "");
    expect(reasons.map((r) => r.kind)).toContain("pending");
    // The pins land on the backends a moment before the engine writes its outcomes.
    const recorded = async () => {
      for (const cid of cids) {
        for (const backend of [kubo, helia]) {
          if ((await f.row(backend, cid.toString()))?.status !== "pinned") return false;
        }
      }
      return true;
    };
    expect(await f.until(recorded)).toBe(true);
    for (const cid of cids) {
      expect(await f.row(kubo, cid.toString())).toMatchObject({ status: "pinned", owned: true });
      expect(await f.row(helia, cid.toString())).toMatchObject({ status: "pinned", owned: true });
    }
  });

  it("keeps confirmed pins, then releases them after a final Unregister plus the TTL", async () => {
    await anvil.testClient.mine({ blocks: FINALITY_BLOCKS });
    expect(
      await f.until(
        async () =>
          (await f.store.reasonsFor(cids[0]?.toString() ?? "")).some((r) => r.kind === "confirmed"),
        60_000,
      ),
    ).toBe(true);

    await unregister(anvil, registry, storage);
    // Not final yet: nothing may be released on information that can still be reorged.
    await new Promise((resolve) => setTimeout(resolve, TTL_MS + 1_000));
    expect(await pinnedEverywhere()).toBe(true);

    await anvil.testClient.mine({ blocks: FINALITY_BLOCKS });
    expect(
      await f.until(async () => {
        for (const cid of cids) {
          if ((await f.row(kubo, cid.toString()))?.status !== "unpinned") return false;
          if ((await f.row(helia, cid.toString()))?.status !== "unpinned") return false;
        }
        return true;
      }, 90_000),
    ).toBe(true);
    for (const cid of cids) {
      expect(await pinnedOn(kubo, cid)).toBe(false);
      expect(await pinnedOn(helia, cid)).toBe(false);
    }
    expect(chainId).toBeGreaterThan(0);
  });
});
