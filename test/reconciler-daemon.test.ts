import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContentCapableBackend } from "@/backends/backend.js";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

async function* bytes(data: Uint8Array) {
  yield data;
}

// The engine against a real Kubo daemon and an embedded helia node at once.
describe("engine on a Kubo daemon and embedded helia", () => {
  let dir: string;
  let daemon: IpfsDaemon;
  let f: EngineFixture;
  let kubo: ContentCapableBackend;
  let helia: ContentCapableBackend;
  const TTL_MS = 60_000;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "quasar-daemon-engine-"));
    daemon = await startIpfsDaemon();
    f = await createEngineFixture({
      backends: [daemon.connectionString, `helia://${join(dir, "helia")}?offline=true`],
      env: { QUASAR_PIN_TTL: `${TTL_MS}ms`, QUASAR_PIN_INACTIVITY_TIMEOUT: "5s" },
    });
    [kubo, helia] = f.backends as [ContentCapableBackend, ContentCapableBackend];
  });
  afterAll(async () => {
    await f?.close();
    await daemon?.destroy();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Stores bytes on the daemon and pins them as another user of the node would (no Quasar name). */
  async function foreignPin(): Promise<CID> {
    const answer = await daemon.rpc(
      "block/put",
      { format: "raw", "cid-codec": "raw", mhtype: "sha2-256" },
      { field: "file", bytes: new Uint8Array(randomBytes(200)) },
    );
    const cid = CID.parse((JSON.parse(answer) as { Key: string }).Key).toV1();
    await daemon.rpc("pin/add", { arg: cid.toString(), recursive: "true" });
    return cid;
  }
  const pinnedOn = async (backend: ContentCapableBackend, cid: CID) =>
    (await backend.pins.getPin(cid, {})) !== undefined;

  it("never touches foreign pins on the shared daemon, desired or not", async () => {
    const undesired = await foreignPin();
    const desired = await foreignPin();
    // Desired for two more seconds only: an optimistic pin recorded as if made TTL − 2 s ago.
    await f.want(desired.toString(), new Date(Date.now() - TTL_MS + 2_000));
    const text = desired.toString();
    expect(
      await f.until(
        async () =>
          (await f.row(kubo, text))?.status === "pinned" &&
          (await f.row(helia, text))?.status === "pinned",
      ),
    ).toBe(true);
    expect(await f.row(kubo, text)).toMatchObject({ owned: false });
    // helia is offline: it got the content from the daemon as a CAR.
    expect(await f.row(helia, text)).toMatchObject({ owned: true });

    expect(
      await f.until(
        async () =>
          (await f.row(kubo, text))?.status === "unpinned" &&
          (await f.row(helia, text))?.status === "unpinned",
      ),
    ).toBe(true);
    await f.reconciler.sweepOnce();
    await f.reconciler.waitIdle();
    expect(await pinnedOn(helia, desired)).toBe(false);
    expect(await pinnedOn(kubo, desired)).toBe(true);
    expect(await pinnedOn(kubo, undesired)).toBe(true);
    const unpins = await f.ledger
      .selectFrom("reconcile_log")
      .select("cid")
      .where("backend_id", "=", kubo.id)
      .where("decision", "=", "unpin")
      .where("cid", "in", [text, undesired.toString()])
      .execute();
    expect(unpins).toEqual([]);
  });

  it("leaves a pin someone else made again after Quasar's, when Quasar no longer wants it", async () => {
    const answer = await daemon.rpc(
      "block/put",
      { format: "raw", "cid-codec": "raw", mhtype: "sha2-256", pin: "false" },
      { field: "file", bytes: new Uint8Array(randomBytes(200)) },
    );
    const cid = CID.parse((JSON.parse(answer) as { Key: string }).Key).toV1();
    const text = cid.toString();
    // Desired for a few seconds: Quasar pins it (owned), then another user of the node pins
    // the same CID again, which on a daemon replaces Quasar's pin and its name.
    await f.want(text, new Date(Date.now() - TTL_MS + 4_000));
    expect(await f.until(async () => (await f.row(kubo, text))?.status === "pinned", 10_000)).toBe(
      true,
    );
    expect(await f.row(kubo, text)).toMatchObject({ owned: true });
    expect(await kubo.pins.getPin(cid, {})).toMatchObject({ name: "quasar" });
    await daemon.rpc("pin/add", { arg: text, recursive: "true" });

    expect(
      await f.until(async () => (await f.row(kubo, text))?.status === "unpinned", 20_000),
    ).toBe(true);
    expect(await f.row(kubo, text)).toMatchObject({ owned: false });
    expect(await pinnedOn(kubo, cid)).toBe(true);
    const decisions = await f.ledger
      .selectFrom("reconcile_log")
      .select(["decision", "reason"])
      .where("backend_id", "=", kubo.id)
      .where("cid", "=", text)
      .orderBy("id")
      .execute();
    expect(decisions.at(-1)).toMatchObject({
      decision: "skip_foreign",
      reason: expect.stringMatching(/pinned again since Quasar pinned it/),
    });
  });

  it("retries a pin of content nobody has with backoff", async () => {
    // Offline Kubo refuses it at once ("not found locally"); the inactivity timeout against
    // Kubo's progress is in reconciler-kubo.test.ts.
    const missing = CID.createV1(raw.code, await sha256.digest(new Uint8Array(randomBytes(32))));
    await f.want(missing.toString());
    expect(
      await f.until(
        async () => ((await f.row(kubo, missing.toString()))?.attempts ?? 0) >= 1,
        30_000,
      ),
    ).toBe(true);
    const row = await f.row(kubo, missing.toString());
    expect(row?.last_error).toMatch(/is not available on backend/);
    expect(["queued", "pinning"]).toContain(row?.status);
  });

  it("keeps converging on helia while the daemon is down, and converges the daemon when it returns", async () => {
    await daemon.stop();
    const cids: CID[] = [];
    for (let i = 0; i < 3; i++) {
      // Stored on helia but not pinned there, so helia has work of its own to do.
      const { cid } = await helia.content.addFile(bytes(new Uint8Array(randomBytes(300))), {
        name: "quasar",
      });
      await helia.pins.unpin(cid, {});
      // The ledger and the pins are keyed by CIDv1 (an upload answers Kubo's CIDv0).
      cids.push(cid.toV1());
      await f.want(cid.toV1().toString());
    }
    expect(
      await f.until(async () => {
        const rows = await Promise.all(cids.map((cid) => f.row(helia, cid.toString())));
        return rows.every((row) => row?.status === "pinned");
      }),
    ).toBe(true);
    for (const cid of cids) expect(await pinnedOn(helia, cid)).toBe(true);
    const waiting = await Promise.all(cids.map((cid) => f.row(kubo, cid.toString())));
    for (const row of waiting) {
      // Waiting, not failed, and no attempt charged to the content for the daemon's absence.
      expect(["queued", "pinning"]).toContain(row?.status);
      expect(row?.attempts).toBe(0);
    }
    expect(f.reconciler.workers.find((w) => w.backend.id === kubo.id)?.isUp()).toBe(false);

    await daemon.restart();
    expect(
      await f.until(async () => {
        const rows = await Promise.all(cids.map((cid) => f.row(kubo, cid.toString())));
        return rows.every((row) => row?.status === "pinned");
      }, 60_000),
    ).toBe(true);
    for (const cid of cids) expect(await pinnedOn(kubo, cid)).toBe(true);
    expect(f.reconciler.workers.find((w) => w.backend.id === kubo.id)?.isUp()).toBe(true);
  });
});
