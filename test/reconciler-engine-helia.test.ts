import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContentCapableBackend } from "@/backends/backend.js";
import { recordOwnedPin } from "@/db/ledger/ledger.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

async function* bytes(text: string) {
  yield new TextEncoder().encode(text);
}

// Two embedded helia nodes, offline: neither can fetch from the network, so content one holds
// reaches the other only by the engine's CAR copy.
describe("engine on two embedded helia backends with the real desired store", () => {
  let dir: string;
  let f: EngineFixture;
  let a: ContentCapableBackend;
  let b: ContentCapableBackend;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "quasar-engine-"));
    f = await createEngineFixture({
      backends: [
        `helia://${join(dir, "a")}?offline=true`,
        `helia://${join(dir, "b")}?offline=true`,
      ],
      env: { QUASAR_PIN_TTL: "6s", QUASAR_PIN_DEADLINE: "1s", QUASAR_FAILED_RETRY_INTERVAL: "1h" },
    });
    [a, b] = f.backends as [ContentCapableBackend, ContentCapableBackend];
  });
  afterAll(async () => {
    await f?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const pinnedOn = async (backend: ContentCapableBackend, cid: CID) =>
    (await backend.pins.getPin(cid, {})) !== undefined;

  it("copies an upload to the backend that cannot fetch it, then releases both pins when the TTL runs out", async () => {
    const { cid } = await a.content.addFile(bytes("hello quasar"), { name: "quasar" });
    const text = cid.toV1().toString();
    // What the API does on upload: pin on one backend, record ownership and the optimistic pin.
    await f.db
      .transaction()
      .execute((trx) =>
        recordOwnedPin(trx, { backendId: a.id, cid: text, schema: f.reconcilerSchema }),
      );
    await f.want(text);
    expect(await f.until(() => pinnedOn(b, cid))).toBe(true);
    // The pin lands on the backend a moment before the engine writes its outcome.
    expect(await f.until(async () => (await f.row(b, text))?.status === "pinned")).toBe(true);
    expect(await f.row(b, text)).toMatchObject({ status: "pinned", owned: true });
    const log = await f.ledger
      .selectFrom("reconcile_log")
      .selectAll()
      .where("cid", "=", text)
      .orderBy("id")
      .execute();
    expect(
      log.some((l) => l.backend_id === b.id && l.decision === "copy" && l.outcome === "ok"),
    ).toBe(true);
    expect(
      log.some((l) => l.backend_id === b.id && l.decision === "pin" && l.outcome === "started"),
    ).toBe(true);

    expect(
      await f.until(async () => !(await pinnedOn(a, cid)) && !(await pinnedOn(b, cid)), 20_000),
    ).toBe(true);
    // The unpin lands on the backend a moment before the engine writes its outcome.
    expect(
      await f.until(
        async () =>
          (await f.row(a, text))?.status === "unpinned" &&
          (await f.row(b, text))?.status === "unpinned",
      ),
    ).toBe(true);
  });

  it("adopts a desired foreign pin, never unpins it, and leaves undesired foreign pins alone", async () => {
    const foreign = await a.content.addFile(bytes("someone else's"), { name: "someone-else" });
    const other = await a.content.addFile(bytes("not ours, not desired"), { name: "someone-else" });
    const text = foreign.cid.toV1().toString();
    await f.want(text);
    expect(
      await f.until(
        async () =>
          (await f.row(b, text))?.status === "pinned" &&
          (await f.row(a, text))?.status === "pinned",
      ),
    ).toBe(true);
    expect(await f.row(a, text)).toMatchObject({ status: "pinned", owned: false });
    expect(await f.row(b, text)).toMatchObject({ owned: true });

    // Released after the TTL: Quasar's copy on b goes, the foreign pin on a stays.
    expect(await f.until(async () => !(await pinnedOn(b, foreign.cid)), 20_000)).toBe(true);
    await f.reconciler.sweepOnce();
    await f.reconciler.waitIdle();
    expect(await pinnedOn(a, foreign.cid)).toBe(true);
    expect(await pinnedOn(a, other.cid)).toBe(true);
    expect(await f.row(a, other.cid.toV1().toString())).toBeUndefined();
    const decisions = await f.ledger
      .selectFrom("reconcile_log")
      .select("decision")
      .where("backend_id", "=", a.id)
      .where("cid", "=", text)
      .execute();
    expect(decisions.map((d) => d.decision)).toContain("skip_foreign");
    expect(decisions.map((d) => d.decision)).not.toContain("unpin");
  });

  it("re-pins content unpinned by hand on the next sweep", async () => {
    const { cid } = await a.content.addFile(bytes("drift"), { name: "quasar" });
    await f.want(cid.toV1().toString());
    expect(await f.until(() => pinnedOn(b, cid))).toBe(true);
    await b.pins.unpin(cid, {});
    expect(await pinnedOn(b, cid)).toBe(false);
    const report = await f.reconciler.sweepOnce();
    expect(report.backends.find((r) => r.backendId === b.id)?.requeued).toBe(1);
    expect(await f.until(() => pinnedOn(b, cid))).toBe(true);
    const log = await f.ledger
      .selectFrom("reconcile_log")
      .select(["decision", "reason"])
      .where("cid", "=", cid.toV1().toString())
      .where("backend_id", "=", b.id)
      .execute();
    expect(
      log.some((l) => l.decision === "requeue" && /unexpectedly unpinned/.test(l.reason)),
    ).toBe(true);
  });

  it("marks unfetchable content failed after the deadline, reports it degraded, and keeps serving new work", async () => {
    const missing = CID.createV1(
      raw.code,
      await sha256.digest(new TextEncoder().encode(`nowhere ${Date.now()}`)),
    );
    await f.want(missing.toString());
    expect(
      await f.until(async () => {
        const [ra, rb] = await Promise.all([
          f.row(a, missing.toString()),
          f.row(b, missing.toString()),
        ]);
        return ra?.status === "failed" && rb?.status === "failed";
      }, 15_000),
    ).toBe(true);
    const row = await f.row(a, missing.toString());
    expect(row?.attempts).toBeGreaterThanOrEqual(1);
    expect(row?.last_error).toMatch(/not available/);
    // Slow retries only: next attempt an hour away (QUASAR_FAILED_RETRY_INTERVAL).
    expect((row?.next_attempt_at.getTime() ?? 0) - Date.now()).toBeGreaterThan(50 * 60_000);
    expect(await f.reconciler.degradedCids()).toContainEqual({
      cid: missing.toString(),
      replicas: 0,
      required: 2,
    });
    await f.reconciler.refreshMetrics();
    expect((await f.metrics.degraded.get()).values[0]?.value).toBeGreaterThanOrEqual(1);

    // New work still goes through while the failed CID waits.
    const { cid } = await a.content.addFile(bytes("new work"), { name: "quasar" });
    await f.want(cid.toV1().toString());
    expect(await f.until(() => pinnedOn(b, cid))).toBe(true);
  });
});
