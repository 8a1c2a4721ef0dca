import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  InvalidRegistrationError,
  listOffchainRegistrations,
  recordOffchainRegistration,
} from "@/db/registrations.js";
import { latestOptimisticExpiries, recordOptimisticPin } from "@/db/uploads.js";
import { InvalidCidError } from "@/src/cid.js";
import { CIDS, CONTRACT_A } from "@/test/desired/history.js";
import { createStoreFixture, type StoreFixture } from "@/test/desired/store-setup.js";

const TTL_MS = 1000;

describe("the desired set's inputs written by the API", () => {
  let fx: StoreFixture;
  beforeAll(async () => {
    fx = await createStoreFixture(TTL_MS);
  });
  afterAll(async () => {
    await fx.close();
  });
  const rows = async (table: string) =>
    (
      await sql<{
        n: bigint;
      }>`select count(*) as n from ${sql.id(fx.reconcilerSchema, table)}`.execute(fx.db)
    ).rows[0]?.n;

  it("records uploads normalised, inside the caller's transaction, and the latest expiry wins", async () => {
    const v0 = "QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR";
    const now = new Date("2026-01-01T00:00:00Z");
    const recorded = await fx.db.transaction().execute((trx) =>
      recordOptimisticPin(trx, {
        schema: fx.reconcilerSchema,
        cid: v0,
        size: 5,
        uploader: "key-1",
        backendId: "b",
        now,
        ttlMs: TTL_MS,
      }),
    );
    expect(recorded.cid).toMatch(/^bafy/);
    expect(recorded.expiresAt).toEqual(new Date(now.getTime() + TTL_MS));
    await recordOptimisticPin(fx.db, {
      schema: fx.reconcilerSchema,
      cid: recorded.cid,
      size: 5,
      uploader: "key-2",
      backendId: "b",
      now: new Date(now.getTime() + 500),
      ttlMs: TTL_MS,
    });
    const expiries = await latestOptimisticExpiries(fx.db, [recorded.cid, CIDS[0]], {
      schema: fx.reconcilerSchema,
    });
    expect(expiries).toEqual(new Map([[recorded.cid, new Date(now.getTime() + 1500)]]));
    expect(await rows("desired_dirty_cid")).toBe(1n);
  });

  it("refuses an invalid CID with a typed error and writes nothing", async () => {
    const before = await rows("optimistic_pin");
    await expect(
      recordOptimisticPin(fx.db, {
        schema: fx.reconcilerSchema,
        cid: "/ipfs/nope",
        size: 1,
        uploader: "k",
        backendId: "b",
        now: new Date(),
        ttlMs: TTL_MS,
      }),
    ).rejects.toBeInstanceOf(InvalidCidError);
    expect(await rows("optimistic_pin")).toBe(before);
  });

  it("records off-chain registrations lowercase and lists them oldest first", async () => {
    const upper = `0x${CONTRACT_A.slice(2).toUpperCase()}`;
    await recordOffchainRegistration(fx.db, {
      schema: fx.reconcilerSchema,
      chainId: 1,
      contract: upper,
      action: "register",
      actor: "ops",
      now: new Date(1_000),
    });
    await recordOffchainRegistration(fx.db, {
      schema: fx.reconcilerSchema,
      chainId: 1,
      contract: CONTRACT_A,
      action: "unregister",
      actor: "ops",
      now: new Date(2_000),
    });
    const listed = await listOffchainRegistrations(fx.db, {
      schema: fx.reconcilerSchema,
      contract: upper,
    });
    expect(listed.map((r) => [r.chainId, r.contract, r.action, r.createdAt.getTime()])).toEqual([
      [1, CONTRACT_A, "register", 1_000],
      [1, CONTRACT_A, "unregister", 2_000],
    ]);
    expect(await rows("desired_dirty_contract")).toBe(1n);
  });

  it("refuses a bad address or chain id with a typed error and writes nothing", async () => {
    const before = await rows("offchain_registration");
    for (const [chainId, contract] of [
      [1, "0x1234"],
      [0, CONTRACT_A],
      [1.5, CONTRACT_A],
    ] as const) {
      await expect(
        recordOffchainRegistration(fx.db, {
          schema: fx.reconcilerSchema,
          chainId,
          contract,
          action: "register",
          actor: "ops",
          now: new Date(),
        }),
      ).rejects.toBeInstanceOf(InvalidRegistrationError);
    }
    expect(await rows("offchain_registration")).toBe(before);
  });
});
