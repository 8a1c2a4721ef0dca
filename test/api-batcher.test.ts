import { sql } from "kysely";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { describe, expect, it } from "vitest";
import { createBatcher } from "@/api/batcher.js";
import { createApiFixture } from "./api-fixture.js";

describe("upload batcher (group commit)", () => {
  it("writes a lone item at once and groups items that arrive while writers are busy", async () => {
    const batches: number[][] = [];
    let release: (() => void) | undefined;
    const write = async (items: readonly number[]) => {
      batches.push([...items]);
      if (items[0] === 0) await new Promise<void>((resolve) => (release = resolve));
    };
    const record = createBatcher(write, { maxBatch: 4, maxWriters: 1 });
    const first = record(0);
    expect(batches).toEqual([[0]]);
    const rest = Array.from({ length: 6 }, (_, i) => record(i + 1));
    release?.();
    await Promise.all([first, ...rest]);
    expect(batches).toEqual([[0], [1, 2, 3, 4], [5, 6]]);
  });

  it("settles each caller only after its own item is written, and isolates a bad item", async () => {
    const written = new Set<number>();
    let gate: (() => void) | undefined;
    const write = async (items: readonly number[]) => {
      if (items[0] === -1) await new Promise<void>((resolve) => (gate = resolve));
      if (items.includes(13)) throw new Error("bad item 13");
      for (const item of items) written.add(item);
    };
    const record = createBatcher(write, { maxBatch: 10, maxWriters: 1 });
    const blocker = record(-1);
    const outcomes = [12, 13, 14].map((n) =>
      record(n).then(
        () => ({ n, ok: written.has(n) }),
        (error: Error) => ({ n, error: error.message }),
      ),
    );
    gate?.();
    await blocker;
    expect(await Promise.all(outcomes)).toEqual([
      { n: 12, ok: true },
      { n: 13, error: "bad item 13" },
      { n: 14, ok: true },
    ]);
  });

  it("never runs more writers than allowed", async () => {
    let running = 0;
    let peak = 0;
    const record = createBatcher(
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((resolve) => setTimeout(resolve, 5));
        running--;
      },
      { maxBatch: 2, maxWriters: 3 },
    );
    await Promise.all(Array.from({ length: 50 }, (_, i) => record(i)));
    expect(peak).toBe(3);
  });
});

describe("store: concurrent uploads recorded in batches", () => {
  it("records every upload (duplicates included) with its optimistic pin, ledger row and log", async () => {
    const fixture = await createApiFixture();
    try {
      const cids = await Promise.all(
        Array.from({ length: 35 }, async (_, i) =>
          CID.createV1(
            raw.code,
            await sha256.digest(new TextEncoder().encode(`batch ${i}`)),
          ).toString(),
        ),
      );
      // Five CIDs uploaded twice at once, side by side: the same (backend, cid) lands in two
      // concurrent transactions and twice in one batch.
      const uploads = cids
        .flatMap((cid, i) => (i < 5 ? [cid, cid] : [cid]))
        .map((cid) => ({
          cid,
          size: 10,
          uploader: "key-batch",
          backendId: "helia-batch",
          now: new Date(),
          pinnedOnBackend: false,
          pinDeadlineMs: 86_400_000,
        }));
      // Not pinned on the backend yet: every upload records Quasar's intent to pin (queued, owned).
      const outcomes = await Promise.all(
        uploads.map((upload) => fixture.store.recordUpload(upload)),
      );
      expect(new Set(outcomes)).toEqual(new Set(["pin"]));
      const table = (name: string) => sql.table(`${fixture.schema.schema}.${name}`);
      const intents = await sql<{
        n: string;
      }>`select count(*)::text as n from ${table("pin_ledger")}
        where owned and status = 'queued' and next_attempt_at > now()`.execute(fixture.db);
      expect(intents.rows[0]?.n).toBe("35");
      // The API pinned them: confirmed, also concurrently and twice for the duplicates.
      await Promise.all(uploads.map((upload) => fixture.store.confirmUploadPin(upload)));
      const counts = await sql<{
        pins: string;
        ledger: string;
        owned: string;
        logs: string;
        queued: string;
        dirty: string;
      }>`select
        (select count(*) from ${table("optimistic_pin")})::text as pins,
        (select count(*) from ${table("pin_ledger")})::text as ledger,
        (select count(*) from ${table("pin_ledger")} where owned and status = 'pinned')::text as owned,
        (select count(*) from ${table("reconcile_log")} where decision = 'record_owned')::text as logs,
        (select count(*) from ${table("reconcile_log")} where decision = 'queue')::text as queued,
        (select count(*) from ${table("desired_dirty_cid")})::text as dirty`.execute(fixture.db);
      expect(counts.rows[0]).toEqual({
        pins: "40",
        ledger: "35",
        owned: "35",
        logs: "40",
        queued: "40",
        dirty: "35",
      });
      for (const cid of cids.slice(0, 3)) {
        const reasons = await fixture.store.reasonsFor(cid);
        expect(reasons.map((r) => r.kind)).toEqual(["optimistic"]);
      }
    } finally {
      await fixture.close();
    }
  });
});
