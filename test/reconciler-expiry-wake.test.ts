import { randomBytes } from "node:crypto";
import { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContentCapableBackend } from "@/backends/backend.js";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

// Issue 12's promise (b): an expired upload is unpinned at most one reconcile interval late.
// The engine wakes for the desired set's next expiry instead of sleeping out the interval;
// with a 30 s interval an upload expiring 3 s after start is unpinned long before the loop's
// next regular step (bench:latency measures the figures on the dev stack).
describe("the engine wakes for an expiry", () => {
  let daemon: IpfsDaemon;
  let f: EngineFixture;
  let kubo: ContentCapableBackend;
  const TTL_MS = 60_000;
  const INTERVAL_MS = 30_000;

  beforeAll(async () => {
    daemon = await startIpfsDaemon();
    f = await createEngineFixture({
      backends: [daemon.connectionString],
      env: { QUASAR_PIN_TTL: `${TTL_MS}ms`, QUASAR_RECONCILE_INTERVAL: `${INTERVAL_MS}ms` },
      start: false,
    });
    [kubo] = f.backends as [ContentCapableBackend];
  });
  afterAll(async () => {
    await f?.close();
    await daemon?.destroy();
  });

  it("unpins an expired upload when it expires, not at the next interval", async () => {
    const answer = await daemon.rpc(
      "block/put",
      { format: "raw", "cid-codec": "raw", mhtype: "sha2-256" },
      { field: "file", bytes: new Uint8Array(randomBytes(200)) },
    );
    const cid = CID.parse((JSON.parse(answer) as { Key: string }).Key).toV1();
    const text = cid.toString();
    const expiresAt = Date.now() + 3_000;
    await f.want(text, new Date(expiresAt - TTL_MS));
    // The start-up sweep's step takes the upload in and pins it.
    await f.reconciler.start();
    expect(await f.until(async () => (await f.row(kubo, text))?.status === "pinned", 10_000)).toBe(
      true,
    );
    expect(await f.store.nextChangeAt()).toEqual(new Date(expiresAt));
    expect(
      await f.until(
        async () => (await f.row(kubo, text))?.status === "unpinned",
        expiresAt + INTERVAL_MS / 2 - Date.now(),
      ),
    ).toBe(true);
    expect(await kubo.pins.getPin(cid, {})).toBeUndefined();
    // Nothing left to wait for.
    expect(await f.store.nextChangeAt()).toBeNull();
  });
});
