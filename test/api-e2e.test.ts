import { CID } from "multiformats/cid";
import pino from "pino";
import type { Address } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDesiredStore } from "@/db/desired/index.js";
import { createReconciler, type Reconciler } from "@/reconciler/engine/engine.js";
import { createReconcilerMetrics } from "@/reconciler/engine/metrics.js";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";
import { type Anvil, deployContracts, pinMany, startAnvil } from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

/**
 * End to end on real parts: anvil, `ponder start`, Postgres, the reconciler engine and two
 * embedded helia backends, with uploads through the API. An upload followed by a PinHash
 * is pending, then confirmed once final (Ponder: 30 blocks on anvil), and spread to the
 * second backend; an upload nobody confirms is released after the (short) TTL. Everything
 * is checked in the API's status answer and on the backends themselves.
 */

const TTL_SECONDS = 20;
const FINALITY_BLOCKS = 30;

type PinStatus = {
  desired: boolean;
  reasons: {
    kind: string;
    confirmationsLeft?: number;
    chainId?: number;
    transactionHash?: string;
    blockNumber?: string;
  }[];
  backends: { backend: string; status: string }[];
};

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

describe("upload → PinHash → pending → confirmed; unconfirmed upload released after the TTL", () => {
  let anvil: Anvil;
  let indexer: TestSchema;
  let ponder: PonderProcess;
  let fixture: ApiFixture;
  let reconciler: Reconciler;
  let chainId: number;
  let storage: Address;

  beforeAll(async () => {
    chainId = uniqueChainId();
    anvil = await startAnvil({ chainId });
    indexer = await createTestSchema("apie2e");
    const deployed = await deployContracts(anvil);
    storage = deployed.storage;
    ponder = await startPonder({
      databaseUrl: indexer.databaseUrl,
      schema: indexer.schema,
      chains: [{ id: chainId, rpc: anvil.rpcUrl, registry: deployed.registry }],
    });
    fixture = await createApiFixture({
      backends: 2,
      indexerSchema: indexer.schema,
      env: {
        QUASAR_INDEXER_SCHEMA: indexer.schema,
        QUASAR_CHAINS: JSON.stringify([
          { id: chainId, rpc: anvil.rpcUrl, registry: deployed.registry },
        ]),
        QUASAR_PIN_TTL: `${TTL_SECONDS}s`,
        QUASAR_RECONCILE_INTERVAL: "300ms",
        QUASAR_FULL_SWEEP_INTERVAL: "5s",
        QUASAR_RETRY_BASE: "300ms",
        QUASAR_RETRY_MAX: "2s",
      },
    });
    const desiredStore = createDesiredStore({
      db: fixture.db,
      indexerSchema: indexer.schema,
      reconcilerSchema: fixture.schema.schema,
      ttlMs: fixture.config.QUASAR_PIN_TTL,
    });
    reconciler = createReconciler({
      common: { logger: pino({ level: "silent" }), metrics: createReconcilerMetrics() },
      db: fixture.db,
      backends: fixture.backends,
      desiredStore,
      config: fixture.config,
    });
    await reconciler.start();
  });

  afterAll(async () => {
    await reconciler?.stop();
    await fixture?.close();
    await ponder?.stop();
    await anvil?.stop();
    await indexer?.drop();
  });

  const status = async (cid: string): Promise<PinStatus> => {
    const response = await fixture.app.request(`/api/v0/pins/${cid}`);
    expect(response.status).toBe(200);
    return (await response.json()) as PinStatus;
  };
  const upload = async (text: string): Promise<string> => {
    const form = new FormData();
    form.append("entry", new Blob([text]));
    const response = await fixture.app.request("/api/v0/add", { method: "POST", body: form });
    expect(response.status).toBe(201);
    return response.text();
  };
  const pinnedOn = async (cid: string) =>
    Promise.all(
      fixture.backends.map(
        async (backend) => (await backend.pins.getPin(CID.parse(cid), {})) !== undefined,
      ),
    );

  it("walks both CIDs through their whole lives", async () => {
    const confirmedCid = await upload(`confirmed content ${Date.now()}`);
    const unconfirmedCid = await upload(`unconfirmed content ${Date.now()}`);
    const uploadedAt = Date.now();

    // Both are optimistic at once, and the reconciler copies them to the second backend.
    expect((await status(unconfirmedCid)).reasons.map((r) => r.kind)).toEqual(["optimistic"]);
    await until("both uploads on both backends", async () => {
      const [a, b] = await Promise.all([pinnedOn(confirmedCid), pinnedOn(unconfirmedCid)]);
      return [...a, ...b].every(Boolean) ? true : undefined;
    });

    // PinHash on chain: pending with confirmations left.
    const tx = await pinMany(anvil, storage, [confirmedCid]);
    const pending = await until("pending reason", async () => {
      const s = await status(confirmedCid);
      return s.reasons.find((r) => r.kind === "pending");
    });
    expect(pending).toMatchObject({ chainId, transactionHash: tx });
    expect(pending.confirmationsLeft).toBeGreaterThan(0);
    expect(pending.confirmationsLeft).toBeLessThanOrEqual(FINALITY_BLOCKS);

    // Final: confirmed by chain, contract, transaction and block. Ponder finalizes in steps
    // (30 blocks behind on anvil), so keep mining until it has.
    await anvil.testClient.mine({ blocks: FINALITY_BLOCKS + 2 });
    const confirmed = await until(
      "confirmed reason",
      async () => {
        const found = (await status(confirmedCid)).reasons.find((r) => r.kind === "confirmed");
        if (!found) await anvil.testClient.mine({ blocks: 5 });
        return found;
      },
      120_000,
    );
    expect(confirmed).toMatchObject({
      chainId,
      transactionHash: tx,
      contract: storage.toLowerCase(),
    });
    const receipt = await anvil.publicClient.getTransactionReceipt({ hash: tx });
    expect(confirmed.blockNumber).toBe(receipt.blockNumber.toString());

    // After the TTL: the unconfirmed upload is released everywhere, the confirmed one stays.
    const remaining = uploadedAt + TTL_SECONDS * 1000 - Date.now();
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
    await until(
      "the unconfirmed upload released on both backends",
      async () => {
        const s = await status(unconfirmedCid);
        const onBackends = await pinnedOn(unconfirmedCid);
        return !s.desired &&
          onBackends.every((pinned) => !pinned) &&
          s.backends.every((b) => b.status === "unpinned")
          ? s
          : undefined;
      },
      60_000,
    );
    const kept = await status(confirmedCid);
    expect(kept.desired).toBe(true);
    expect(kept.reasons.map((r) => r.kind)).toEqual(["confirmed"]);
    expect(kept.backends.map((b) => b.status)).toEqual(["pinned", "pinned"]);
    expect(await pinnedOn(confirmedCid)).toEqual([true, true]);

    // The list filters by reason (from the desired set) and by backend status (from the ledger).
    const list = async (query: string) =>
      (
        (await (await fixture.app.request(`/api/v0/pins?${query}`)).json()) as {
          items: { cid: string }[];
        }
      ).items.map((item) => item.cid);
    // The upload answered Kubo's CIDv0 (Qm…); pins are listed under the CIDv1 key the
    // indexer gives a PinHash, so the Qm… put on chain above is the same pin.
    const v1 = (cid: string) => CID.parse(cid).toV1().toString();
    expect(await list("reason=confirmed")).toEqual([v1(confirmedCid)]);
    expect(await list("reason=optimistic")).toEqual([]);
    expect(await list(`status=unpinned&backend=${fixture.backends[1]!.id}`)).toEqual([
      v1(unconfirmedCid),
    ]);
    expect((await list("limit=10")).sort()).toEqual([v1(confirmedCid), v1(unconfirmedCid)].sort());

    // The on-chain registration is listed with where it came from.
    const contracts = (await (await fixture.app.request("/api/v0/storageContracts")).json()) as {
      address: string;
      source: string;
    }[];
    expect(contracts).toEqual([
      expect.objectContaining({ chainId, address: storage.toLowerCase(), source: "chain" }),
    ]);
  });
});
