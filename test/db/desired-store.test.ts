import { createHash } from "node:crypto";
import { sql } from "kysely";
import { CID } from "multiformats/cid";
import { create as createDigest } from "multiformats/hashes/digest";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createReadModel } from "@/db/read-model/index.js";
import { recordOffchainRegistration } from "@/db/registrations.js";
import { recordUploads } from "@/db/uploads/index.js";
import {
  blockDate,
  CIDS,
  CONTRACT_A,
  CONTRACT_B,
  invalidPinHash,
  pinHash,
  register,
  unregister,
} from "@/test/desired/history.js";
import { insertEvents, revertAbove, setProgress } from "@/test/desired/indexer.js";
import {
  createStoreFixture,
  type StoreFixture,
  snapshot,
  upload,
} from "@/test/desired/store-setup.js";

const TTL_MS = 3_600_000;

/** A CIDv1 (raw, sha2-256) of `text`: as many distinct valid CIDs as a test needs. */
function rawCid(text: string): string {
  return CID.createV1(
    0x55,
    createDigest(0x12, createHash("sha256").update(text).digest()),
  ).toString();
}
const [C0, C1, C2] = CIDS;
const plus = (date: Date, ms: number) => new Date(date.getTime() + ms);

describe("desired store", () => {
  let fx: StoreFixture;
  beforeEach(async () => {
    fx = await createStoreFixture(TTL_MS);
  });
  afterEach(async () => {
    await fx.close();
  });

  const progress = (finalized: bigint, indexed = finalized + 20n, chainId = 1) =>
    setProgress(fx.db, fx.indexerSchema, chainId, { indexed, finalized });
  const persisted = async () =>
    (await snapshot(fx.db, fx.reconcilerSchema, "pin_ref")) +
    (await snapshot(fx.db, fx.reconcilerSchema, "registration_event"));

  it("folds new final events into changes, once; answers reasons, counts, the sorted set and lag", async () => {
    await insertEvents(fx.db, fx.indexerSchema, [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C1, { block: 2n }),
      pinHash(CONTRACT_A, C0, { block: 3n }),
      invalidPinHash(CONTRACT_A, "Qm-not-a-cid", { block: 3n, log: 1 }),
    ]);
    await progress(10n);
    const changes = await fx.store.step({ now: blockDate(20n) });
    expect(changes.map((c) => [c.cid, c.desired, c.reasons.map((r) => r.kind)]).sort()).toEqual(
      [
        [C0, true, ["confirmed"]],
        [C1, true, ["confirmed"]],
      ].sort(),
    );
    expect(await fx.store.step({ now: blockDate(21n) })).toEqual([]);
    expect(await fx.store.reasonsFor(C0)).toMatchObject([
      { kind: "confirmed", chainId: 1, contract: CONTRACT_A, blockNumber: 3n },
    ]);
    expect(await fx.store.reasonsFor(C2)).toEqual([]);
    expect(await fx.store.reasonsFor("not a cid")).toEqual([]);
    expect(await fx.store.counts()).toEqual({
      desired: 2,
      confirmed: 2,
      pending: 0,
      optimistic: 0,
      demoted: 0,
      psa: 0,
    });
    const streamed: string[] = [];
    for await (const cid of fx.store.streamDesired()) streamed.push(cid);
    expect(streamed).toEqual([C0, C1].sort());
    expect(await fx.store.lag()).toEqual([
      { chainId: 1, indexedBlock: 30n, finalizedBlock: 10n, foldedBlock: 10n },
    ]);
  });

  it("reports pending with confirmations left, then confirmed once final, folding only final blocks", async () => {
    await insertEvents(fx.db, fx.indexerSchema, [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 14n }),
    ]);
    await progress(10n, 15n);
    const first = await fx.store.step({ now: blockDate(15n) });
    expect(first).toMatchObject([
      { cid: C0, desired: true, reasons: [{ kind: "pending", confirmationsLeft: 4 }] },
    ]);
    expect(await snapshot(fx.db, fx.reconcilerSchema, "pin_ref")).toBe("[]");
    await progress(12n, 16n);
    expect(await fx.store.step({ now: blockDate(16n) })).toMatchObject([
      { cid: C0, reasons: [{ kind: "pending", confirmationsLeft: 2 }] },
    ]);
    await progress(14n, 18n);
    expect(await fx.store.step({ now: blockDate(18n) })).toMatchObject([
      { cid: C0, desired: true, reasons: [{ kind: "confirmed", blockNumber: 14n }] },
    ]);
    expect(await fx.store.counts()).toMatchObject({ desired: 1, confirmed: 1, pending: 0 });
  });

  it("catches up on more events than one read holds, then follows new blocks in single reads", async () => {
    // A first step leaves a cursor; then 6,001 PinHashes arrive (more than the 5,000 one read
    // of the events above the cursor holds): 6,000 final, one still in the tail.
    await insertEvents(fx.db, fx.indexerSchema, [register(CONTRACT_A, { block: 1n })]);
    await progress(1n);
    expect(await fx.store.step({ now: blockDate(2n) })).toEqual([]);
    const cids = Array.from({ length: 6_001 }, (_, i) => rawCid(`catch-up ${i}`));
    await insertEvents(
      fx.db,
      fx.indexerSchema,
      cids.map((cid, i) => pinHash(CONTRACT_A, cid, { block: 2n + BigInt(i >> 4), log: i % 16 })),
    );
    const lastBlock = 2n + BigInt(6_000 >> 4);
    await progress(lastBlock - 1n, lastBlock);
    const changes = await fx.store.step({ now: blockDate(lastBlock) });
    expect(changes).toHaveLength(6_001);
    expect(await fx.store.counts()).toMatchObject({ desired: 6_001, confirmed: 6_000, pending: 1 });
    expect(await fx.store.lag()).toEqual([
      {
        chainId: 1,
        indexedBlock: lastBlock,
        finalizedBlock: lastBlock - 1n,
        foldedBlock: lastBlock - 1n,
      },
    ]);
    // The last block becomes final and one more PinHash arrives: one read covers both.
    const next = rawCid("catch-up next");
    await insertEvents(fx.db, fx.indexerSchema, [
      pinHash(CONTRACT_A, next, { block: lastBlock + 1n }),
    ]);
    await progress(lastBlock, lastBlock + 1n);
    const after = await fx.store.step({ now: blockDate(lastBlock + 1n) });
    expect(after.map((c) => [c.cid, c.reasons.map((r) => r.kind)]).sort()).toEqual(
      [
        [cids[6_000], ["confirmed"]],
        [next, ["pending"]],
      ].sort(),
    );
    expect(await fx.store.counts()).toMatchObject({ desired: 6_002, confirmed: 6_001, pending: 1 });
  });

  it("follows a reorg of the unfinalized tail without touching the persisted finalized state", async () => {
    await insertEvents(fx.db, fx.indexerSchema, [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 5n }),
      pinHash(CONTRACT_A, C1, { block: 12n }),
      pinHash(CONTRACT_A, C2, { block: 13n }),
    ]);
    await progress(10n, 13n);
    // C2 was also uploaded through the API: the upload outlives the reorg.
    await recordUploads(fx.db, {
      schema: fx.reconcilerSchema,
      ttlMs: TTL_MS,
      uploads: [
        upload(C2, blockDate(13n), { size: 10, uploader: "key-1", backendId: "helia-test" }),
      ],
    });
    await fx.store.step({ now: blockDate(13n) });
    const before = await persisted();
    expect(await fx.store.reasonsFor(C2)).toMatchObject([
      { kind: "pending" },
      { kind: "optimistic" },
    ]);

    // Blocks 11+ are replaced: C1 and C2 vanish, another block 12 pins C0 again from A.
    await revertAbove(fx.db, fx.indexerSchema, 1, 10n);
    const replacement = {
      ...pinHash(CONTRACT_A, C0, { block: 12n, log: 3 }),
      blockHash: `0x${"ee".repeat(32)}` as const,
    };
    await insertEvents(fx.db, fx.indexerSchema, [replacement]);
    await progress(10n, 12n);
    const changes = await fx.store.step({ now: blockDate(14n) });
    const byCid = Object.fromEntries(changes.map((c) => [c.cid, c.reasons.map((r) => r.kind)]));
    expect(byCid).toEqual({ [C0]: ["confirmed", "pending"], [C1]: [], [C2]: ["optimistic"] });
    expect(changes.find((c) => c.cid === C1)?.desired).toBe(false);
    expect(await persisted()).toBe(before);
  });

  it("drops a demotion that rested on a PinHash a reorg removed", async () => {
    // Found by the property test: a pending PinHash from A, then a (final) off-chain
    // Unregister of A demotes it. The reorg that removes the PinHash leaves A's standing
    // and every persisted row untouched, and the CID is not `pending`: the step must still
    // re-evaluate it, because its answer used the tail.
    await insertEvents(fx.db, fx.indexerSchema, [
      register(CONTRACT_A, { block: 11n }),
      pinHash(CONTRACT_A, C0, { block: 11n, log: 1 }),
    ]);
    await progress(10n, 11n);
    await recordOffchainRegistration(fx.db, {
      schema: fx.reconcilerSchema,
      chainId: 1,
      contract: CONTRACT_A,
      action: "unregister",
      actor: "admin",
      now: blockDate(12n),
    });
    expect(await fx.store.step({ now: blockDate(12n) })).toMatchObject([
      { cid: C0, desired: true, reasons: [{ kind: "demoted" }] },
    ]);
    await revertAbove(fx.db, fx.indexerSchema, 1, 10n);
    await progress(10n, 10n);
    expect(await fx.store.step({ now: blockDate(12n) })).toEqual([
      { cid: C0, desired: false, reasons: [] },
    ]);
    expect(await fx.store.counts()).toMatchObject({ desired: 0 });
  });

  it("expires optimistic uploads and demotions by `now` alone, exactly at their end", async () => {
    const t0 = blockDate(30n);
    await recordUploads(fx.db, {
      schema: fx.reconcilerSchema,
      ttlMs: TTL_MS,
      uploads: [upload(C0, t0, { size: 1n, uploader: "1.2.3.4", backendId: "helia-test" })],
    });
    await insertEvents(fx.db, fx.indexerSchema, [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C1, { block: 2n }),
      unregister(CONTRACT_A, { block: 20n }),
    ]);
    await progress(25n);
    expect(
      (await fx.store.step({ now: t0 })).map((c) => [c.cid, c.reasons.map((r) => r.kind)]).sort(),
    ).toEqual(
      [
        [C0, ["optimistic"]],
        [C1, ["demoted"]],
      ].sort(),
    );
    const demotionEnd = plus(blockDate(20n), TTL_MS);
    expect(await fx.store.step({ now: plus(demotionEnd, -1) })).toEqual([]);
    expect(await fx.store.step({ now: demotionEnd })).toEqual([
      { cid: C1, desired: false, reasons: [] },
    ]);
    expect(await fx.store.step({ now: plus(t0, TTL_MS - 1) })).toEqual([]);
    expect(await fx.store.step({ now: plus(t0, TTL_MS) })).toEqual([
      { cid: C0, desired: false, reasons: [] },
    ]);
    expect(await fx.store.counts()).toMatchObject({ desired: 0 });
  });

  it("a non-final Unregister changes nothing; once final it demotes; a later Register restores", async () => {
    await insertEvents(fx.db, fx.indexerSchema, [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
      unregister(CONTRACT_A, { block: 12n }),
    ]);
    await progress(10n, 13n);
    await fx.store.step({ now: blockDate(13n) });
    expect(await fx.store.reasonsFor(C0)).toMatchObject([{ kind: "confirmed" }]);
    await progress(12n, 14n);
    expect(await fx.store.step({ now: blockDate(14n) })).toMatchObject([
      { cid: C0, desired: true, reasons: [{ kind: "demoted", unregisteredAt: blockDate(12n) }] },
    ]);
    await insertEvents(fx.db, fx.indexerSchema, [register(CONTRACT_A, { block: 15n })]);
    await progress(12n, 15n);
    expect(await fx.store.step({ now: blockDate(15n) })).toMatchObject([
      { cid: C0, desired: true, reasons: [{ kind: "confirmed" }] },
    ]);
    // The re-Register is reorged away: demoted again, with the same end.
    await revertAbove(fx.db, fx.indexerSchema, 1, 12n);
    expect(await fx.store.step({ now: blockDate(16n) })).toMatchObject([
      { cid: C0, reasons: [{ kind: "demoted", until: plus(blockDate(12n), TTL_MS) }] },
    ]);
  });

  it("applies off-chain registrations from their creation time, recorded by the API", async () => {
    await insertEvents(fx.db, fx.indexerSchema, [
      pinHash(CONTRACT_B, C0, { block: 4n }),
      pinHash(CONTRACT_B, C1, { block: 6n }),
    ]);
    await progress(10n);
    expect(await fx.store.step({ now: blockDate(11n) })).toEqual([]);
    await recordOffchainRegistration(fx.db, {
      schema: fx.reconcilerSchema,
      chainId: 1,
      contract: CONTRACT_B.toUpperCase().replace("0X", "0x"),
      action: "register",
      actor: "admin",
      now: blockDate(5n),
    });
    expect(await fx.store.step({ now: blockDate(11n) })).toMatchObject([
      { cid: C1, desired: true, reasons: [{ kind: "confirmed", contract: CONTRACT_B }] },
    ]);
    await recordOffchainRegistration(fx.db, {
      schema: fx.reconcilerSchema,
      chainId: 1,
      contract: CONTRACT_B,
      action: "unregister",
      actor: "admin",
      now: blockDate(11n),
    });
    expect(await fx.store.step({ now: blockDate(11n) })).toMatchObject([
      {
        cid: C1,
        reasons: [
          { kind: "demoted", unregisterSource: "offchain", until: plus(blockDate(11n), TTL_MS) },
        ],
      },
    ]);
  });

  it("a step that fails midway leaves the previous state: one transaction", async () => {
    await insertEvents(fx.db, fx.indexerSchema, [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
    ]);
    await progress(10n);
    await recordUploads(fx.db, {
      schema: fx.reconcilerSchema,
      ttlMs: TTL_MS,
      uploads: [upload(C1, blockDate(10n), { size: 1, uploader: "k", backendId: "b" })],
    });
    // A real Postgres failure at the last write of the step (after folding and draining the
    // upload queue): a trigger that refuses rows in desired_cid.
    const table = sql.id(fx.reconcilerSchema, "desired_cid");
    const fn = sql.id(fx.reconcilerSchema, "refuse");
    await sql`create function ${fn}() returns trigger language plpgsql as $$ begin raise exception 'disk full'; end $$`.execute(
      fx.db,
    );
    await sql`create trigger refuse before insert on ${table} for each row execute function ${fn}()`.execute(
      fx.db,
    );
    const tables = [
      "pin_ref",
      "registration_event",
      "desired_cursor",
      "desired_dirty_cid",
      "contract_standing",
      "desired_cid",
    ];
    const snapshots = async () =>
      Promise.all(tables.map((t) => snapshot(fx.db, fx.reconcilerSchema, t)));
    const before = await snapshots();
    await expect(fx.store.step({ now: blockDate(11n) })).rejects.toThrow(/disk full/);
    expect(await snapshots()).toEqual(before);
    await sql`drop trigger refuse on ${table}`.execute(fx.db);
    const changes = await fx.store.step({ now: blockDate(11n) });
    expect(changes.map((c) => c.cid).sort()).toEqual([C0, C1].sort());
  });

  it("serialises concurrent steps: both succeed and the changes are reported once", async () => {
    await insertEvents(fx.db, fx.indexerSchema, [
      register(CONTRACT_A, { block: 1n }),
      ...CIDS.map((cid, log) => pinHash(CONTRACT_A, cid, { block: 2n, log })),
    ]);
    await progress(10n);
    const [a, b] = await Promise.all([
      fx.store.step({ now: blockDate(11n) }),
      fx.store.step({ now: blockDate(11n) }),
    ]);
    expect(a.length + b.length).toBe(CIDS.length);
  });

  it("stops at an aborted signal without changing anything", async () => {
    await insertEvents(fx.db, fx.indexerSchema, [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
    ]);
    await progress(10n);
    await expect(
      fx.store.step({ now: blockDate(11n), signal: AbortSignal.abort() }),
    ).rejects.toThrow();
    expect(await fx.store.counts()).toMatchObject({ desired: 0 });
  });

  it("reads events through the indexer's read model contract", async () => {
    // Guard: the fixture's tables are the layout the read model expects.
    await insertEvents(fx.db, fx.indexerSchema, [register(CONTRACT_A, { block: 1n })]);
    await progress(3n);
    const readModel = createReadModel({ db: fx.db, schema: fx.indexerSchema });
    expect(await readModel.progress()).toEqual([
      { chainId: 1, indexedBlock: 23n, finalizedBlock: 3n },
    ]);
    expect((await readModel.eventsAfter(null, 10)).map((e) => e.kind)).toEqual(["register"]);
  });

  it("vacuums its tables after a step that writes many rows, and not after a small one", async () => {
    const vacuums = async () => {
      const { rows } = await sql<{ relname: string; vacuum_count: string }>`
        select relname, vacuum_count from pg_stat_user_tables
        where schemaname = ${fx.reconcilerSchema} and relname in ('desired_cid', 'pin_ref')
        order by relname`.execute(fx.db);
      return rows.map((row) => `${row.relname}:${row.vacuum_count}`);
    };
    await fx.close();
    // Three events folded and two CIDs written: five rows, at a threshold of four.
    fx = await createStoreFixture(TTL_MS, { vacuumAfterRows: 4 });
    await insertEvents(fx.db, fx.indexerSchema, [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
      pinHash(CONTRACT_A, C1, { block: 3n }),
    ]);
    await progress(10n);
    expect(await vacuums()).toEqual(["desired_cid:0", "pin_ref:0"]);
    await fx.store.step({ now: blockDate(11n) });
    expect(await vacuums()).toEqual(["desired_cid:1", "pin_ref:1"]);
    // One more event and one more CID: two rows, under the threshold.
    await insertEvents(fx.db, fx.indexerSchema, [pinHash(CONTRACT_A, C2, { block: 11n })]);
    await progress(12n);
    await fx.store.step({ now: blockDate(13n) });
    expect(await vacuums()).toEqual(["desired_cid:1", "pin_ref:1"]);
  });
});
