import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContentCapableBackend } from "@/backends/backend.js";
import { recordOwnedPin } from "@/db/ledger/ledger.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

async function* bytes(text: string) {
  yield new TextEncoder().encode(text);
}

// The engine copies a CAR only between backends that both store content: a pin-only backend
// (IPFS Cluster, a Pinning Service) can neither export nor import one. Two offline helia
// nodes, the second shown to the engine with its pin role only: content the first holds can
// reach the second by no path, so its pin fails without a copy being tried, and the first
// still converges.
describe("engine with a pin-only backend beside a content backend", () => {
  let dir: string;
  let f: EngineFixture;
  let a: ContentCapableBackend;
  let b: ContentCapableBackend;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "quasar-pin-only-"));
    f = await createEngineFixture({
      backends: [
        `helia://${join(dir, "a")}?offline=true`,
        `helia://${join(dir, "b")}?offline=true`,
      ],
      pinOnly: [1],
      env: { QUASAR_PIN_DEADLINE: "1s", QUASAR_FAILED_RETRY_INTERVAL: "1h" },
    });
    [a, b] = f.backends as [ContentCapableBackend, ContentCapableBackend];
  });
  afterAll(async () => {
    await f?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("never tries a CAR copy to or from it, and keeps converging the content backend", async () => {
    const { cid } = await a.content.addFile(bytes(`pin only ${Date.now()}`), { name: "quasar" });
    const text = cid.toV1().toString();
    await f.db
      .transaction()
      .execute((trx) =>
        recordOwnedPin(trx, { backendId: a.id, cid: text, schema: f.reconcilerSchema }),
      );
    await f.want(text);
    // Past its deadline the pin on b is given up as failed: no copy rescued it.
    expect(await f.until(async () => (await f.row(b, text))?.status === "failed", 30_000)).toBe(
      true,
    );
    expect(await b.pins.getPin(cid, {})).toBeUndefined();
    expect(await b.content.hasBlock(cid, {})).toBe(false);
    expect((await a.pins.getPin(cid, {}))?.name).toBe("quasar");
    const log = await f.ledger
      .selectFrom("reconcile_log")
      .selectAll()
      .where("cid", "=", text)
      .execute();
    expect(log.some((l) => l.decision === "copy")).toBe(false);
    expect(
      log.some((l) => l.backend_id === b.id && l.decision === "pin" && l.outcome === "error"),
    ).toBe(true);
  });
});
