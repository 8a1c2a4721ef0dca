import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getLedgerRow } from "@/db/ledger/ledger.js";
import {
  InvalidRegistrationError,
  listOffchainRegistrations,
  recordOffchainRegistration,
} from "@/db/registrations.js";
import {
  latestOptimisticExpiries,
  recordUploads,
  UPLOAD_PIN_GRACE_MS,
} from "@/db/uploads/index.js";
import { InvalidCidError } from "@/src/cid.js";
import { CIDS, CONTRACT_A } from "@/test/desired/history.js";
import { createStoreFixture, type StoreFixture, upload } from "@/test/desired/store-setup.js";

const TTL_MS = 1000;

describe("the desired set's inputs written by the API (db/uploads, db/registrations)", () => {
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
    const [recorded] = await fx.db.transaction().execute((trx) =>
      recordUploads(trx, {
        schema: fx.reconcilerSchema,
        ttlMs: TTL_MS,
        uploads: [upload(v0, now, { size: 5, uploader: "key-1", backendId: "b" })],
      }),
    );
    expect(recorded?.cid).toMatch(/^bafy/);
    expect(recorded?.expiresAt).toEqual(new Date(now.getTime() + TTL_MS));
    expect(recorded?.outcome).toBe("pin");
    const cid = recorded?.cid as string;
    await recordUploads(fx.db, {
      schema: fx.reconcilerSchema,
      ttlMs: TTL_MS,
      uploads: [upload(cid, new Date(now.getTime() + 500), { uploader: "key-2", backendId: "b" })],
    });
    const expiries = await latestOptimisticExpiries(fx.db, fx.reconcilerSchema, [cid, CIDS[0]]);
    expect(expiries).toEqual(new Map([[cid, new Date(now.getTime() + 1500)]]));
    expect(await rows("desired_dirty_cid")).toBe(1n);
    // Record before pin: the uploading backend's ledger holds Quasar's intent, owned, and the
    // reconciler may take it only after the grace period the API has to pin it itself (from
    // the latest upload).
    const row = await getLedgerRow(fx.db.withSchema(fx.reconcilerSchema), "b", cid);
    expect(row).toMatchObject({ status: "queued", owned: true });
    expect(row?.next_attempt_at).toEqual(new Date(now.getTime() + 500 + UPLOAD_PIN_GRACE_MS));
  });

  it("refuses an invalid CID with a typed error and writes nothing", async () => {
    const before = await rows("optimistic_pin");
    const ledger = await rows("pin_ledger");
    await expect(
      recordUploads(fx.db, {
        schema: fx.reconcilerSchema,
        ttlMs: TTL_MS,
        uploads: [upload(CIDS[1] as string, new Date()), upload("/ipfs/nope", new Date())],
      }),
    ).rejects.toBeInstanceOf(InvalidCidError);
    expect(await rows("optimistic_pin")).toBe(before);
    expect(await rows("pin_ledger")).toBe(ledger);
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
