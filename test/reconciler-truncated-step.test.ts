/**
 * A step with more changes than the engine takes from it (a first fold of a long history, or
 * a contract with millions of CIDs changing standing) hands out only part of its wants, so its
 * memory does not grow with the history: the engine's next round is a sweep, which derives the
 * rest from the desired set. Here the cap is 5 and 30 CIDs become desired in one step.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContentCapableBackend } from "@/backends/backend.js";
import { applyChanges, recordOwnedPin } from "@/db/ledger/ledger.js";
import { recordUploads } from "@/db/uploads/index.js";
import { upload } from "./desired/store-setup.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

describe("a step with more wants than the engine takes", () => {
  let dir: string;
  let f: EngineFixture;
  let node: ContentCapableBackend;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "quasar-truncated-"));
    f = await createEngineFixture({
      backends: [`helia://${join(dir, "node")}?offline=true`],
      engine: { maxStepChanges: 5 },
    });
    [node] = f.backends as [ContentCapableBackend];
  });
  afterAll(async () => {
    await f?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("pins every CID all the same: the sweep after the step derives the wants it left out", async () => {
    const cids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const { cid } = await node.content.addFile(
        (async function* () {
          yield new TextEncoder().encode(`truncated step ${i} ${Date.now()}`);
        })(),
        { name: "quasar", pin: false },
      );
      cids.push(cid.toV1().toString());
    }
    // Stored here, recorded as uploads to another node: only the engine's ledger work pins
    // them on this one. One transaction, so one step sees all 30.
    await recordUploads(f.db, {
      schema: f.reconcilerSchema,
      ttlMs: 3_600_000,
      uploads: cids.map((cid) =>
        upload(cid, new Date(), { size: 1, uploader: "test", backendId: "elsewhere" }),
      ),
    });
    const pinned = async () => {
      let n = 0;
      for (const cid of cids) if ((await f.row(node, cid))?.status === "pinned") n++;
      return n;
    };
    expect(await f.until(async () => (await pinned()) === cids.length, 30_000)).toBe(true);
    // The sweep, not the hourly one, queued those the step did not hand out.
    const bySweep = await f.ledger
      .selectFrom("reconcile_log")
      .select("cid")
      .where("cid", "in", cids)
      .where("reason", "=", "desired, missing from the backend (sweep)")
      .execute();
    expect(bySweep.length).toBeGreaterThanOrEqual(cids.length - 5);
  });
});

describe("a release waiting for a CID that is desired again", () => {
  let dir: string;
  let f: EngineFixture;
  let node: ContentCapableBackend;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "quasar-cancel-release-"));
    // Not started: the test runs the sweep itself, and no worker unpins meanwhile.
    f = await createEngineFixture({
      backends: [`helia://${join(dir, "node")}?offline=true`],
      start: false,
    });
    [node] = f.backends as [ContentCapableBackend];
  });
  afterAll(async () => {
    await f?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("is cancelled by the sweep: the pin is listed, so only this check can see it", async () => {
    const { cid } = await node.content.addFile(
      (async function* () {
        yield new TextEncoder().encode(`cancel release ${Date.now()}`);
      })(),
      { name: "quasar" },
    );
    const text = cid.toV1().toString();
    // Quasar's pin, then a release queued for it (what a step hands out when the CID leaves
    // the desired set)…
    await f.db.transaction().execute(async (trx) => {
      await recordOwnedPin(trx, { backendId: node.id, cid: text, schema: f.reconcilerSchema });
      await applyChanges(
        trx.withSchema(f.reconcilerSchema),
        [{ backendId: node.id, cid: text, event: "unwant" }],
        { now: new Date(), pinDeadlineMs: 0 },
      );
    });
    expect((await f.row(node, text))?.status).toBe("unpin_queued");
    // …while the CID is desired again, and the step that says so is not seen by the ledger.
    await f.want(text);
    await f.store.step({ now: new Date() });

    await f.reconciler.sweepOnce();
    expect((await f.row(node, text))?.status).not.toMatch(/^unpin/);
    const log = await f.ledger
      .selectFrom("reconcile_log")
      .select("reason")
      .where("cid", "=", text)
      .execute();
    expect(log.map((row) => row.reason)).toContain(
      "desired again while its unpin waited (sweep): release cancelled",
    );
  });
});
