import { randomBytes } from "node:crypto";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BackendStreamError,
  BackendUnavailableError,
  type ContentCapableBackend,
  createBackend,
  QUASAR_PIN_NAME,
  requireContent,
} from "@/backends/index.js";
import { withInactivityTimeout } from "@/reconciler/engine/inactivity.js";
import { PinInactivityError } from "@/reconciler/errors.js";
import { type KuboDaemon, startKubo } from "./harness/kubo.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

/**
 * The reconciler's rules on a real Kubo (0.43, offline, loopback): pin names and ownership,
 * Kubo's own pin progress against the inactivity timeout, and a daemon that goes away in the
 * middle of a stream or a pin.
 */

/** Adds bytes on the daemon without pinning them; answers the root CID as Kubo spells it. */
async function addUnpinned(
  daemon: KuboDaemon,
  bytes: Uint8Array,
  args: Record<string, string> = {},
): Promise<CID> {
  const answer = await daemon.rpc("add", { ...args, pin: "false" }, { field: "file", bytes });
  const lines = answer.trim().split("\n");
  return CID.parse((JSON.parse(lines.at(-1) as string) as { Hash: string }).Hash);
}

/** A DAG of many small blocks (1 KiB leaves): walking it takes Kubo seconds, reporting progress. */
const manyBlocks = (daemon: KuboDaemon, mib: number) =>
  addUnpinned(daemon, new Uint8Array(randomBytes(mib * 1024 * 1024)), {
    chunker: "size-1024",
    "raw-leaves": "true",
    "cid-version": "1",
  });

/**
 * Makes the daemon slow for real, whatever the machine: it runs 25 ms in every 180 ms
 * (SIGSTOP/SIGCONT), never stopped long enough for a 1 s inactivity timeout to miss Kubo's
 * 500 ms progress reports. A fast machine walks a 32 MiB test DAG in about 0.3 s of its own
 * time, too quickly to catch a pin mid-way (CI's walked it in 1.3 s at 40 ms in 160). Returns the function that ends the throttle (the daemon left running).
 */
function throttle(pid: number): () => Promise<void> {
  let running = true;
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(pid, name);
    } catch {
      // the daemon is gone (killed by the test): nothing to throttle
    }
  };
  const loop = (async () => {
    while (running) {
      signal("SIGSTOP");
      await new Promise((resolve) => setTimeout(resolve, 155));
      signal("SIGCONT");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  })();
  return async () => {
    running = false;
    await loop;
    signal("SIGCONT");
  };
}

async function pinType(daemon: KuboDaemon, cid: CID): Promise<string | undefined> {
  try {
    const answer = JSON.parse(
      await daemon.rpc("pin/ls", { arg: cid.toString(), type: "all", names: "true" }),
    ) as { Keys: Record<string, { Type: string; Name?: string }> };
    const entry = Object.values(answer.Keys)[0];
    return entry ? `${entry.Type}:${entry.Name ?? ""}` : undefined;
  } catch (error) {
    if (/is not pinned/.test(String(error))) return undefined;
    throw error;
  }
}

/**
 * One Kubo daemon and an engine on it for a describe block (`env` over the fast test
 * settings); the block reads them after its own `beforeAll`.
 */
function kuboEngineSuite(env: Record<string, string>) {
  const suite = {} as { daemon: KuboDaemon; f: EngineFixture; kubo: ContentCapableBackend };
  beforeAll(async () => {
    suite.daemon = await startKubo();
    suite.f = await createEngineFixture({ backends: [suite.daemon.connectionString], env });
    [suite.kubo] = suite.f.backends as [ContentCapableBackend];
  });
  afterAll(async () => {
    await suite.f?.close();
    await suite.daemon?.destroy();
  });
  return suite;
}

describe("pin ownership on Kubo", () => {
  let daemon: KuboDaemon;
  let f: EngineFixture;
  let kubo: ContentCapableBackend;
  const TTL_MS = 60_000;
  /** Desired for `seconds` more: an optimistic pin recorded as if made TTL − seconds ago. */
  const wantBriefly = (cid: string, seconds: number) =>
    f.want(cid, new Date(Date.now() - TTL_MS + seconds * 1_000));
  const decisions = (cid: string) =>
    f.ledger
      .selectFrom("reconcile_log")
      .select(["decision", "reason"])
      .where("backend_id", "=", kubo.id)
      .where("cid", "=", cid)
      .orderBy("id")
      .execute();

  const suite = kuboEngineSuite({ QUASAR_PIN_TTL: `${TTL_MS}ms` });
  beforeAll(() => {
    ({ daemon, f, kubo } = suite);
  });

  it("pins with Kubo's pin name and lists it back by name", async () => {
    const cid = (await addUnpinned(daemon, new Uint8Array(randomBytes(300)))).toV1();
    await f.want(cid.toString());
    expect(
      await f.until(async () => (await f.row(kubo, cid.toString()))?.status === "pinned"),
    ).toBe(true);
    expect(await pinType(daemon, cid)).toBe(`recursive:${QUASAR_PIN_NAME}`);
    const listed = JSON.parse(
      await daemon.rpc("pin/ls", { arg: cid.toString(), names: "true", type: "recursive" }),
    ) as { Keys: Record<string, { Name: string }> };
    expect(Object.values(listed.Keys)[0]?.Name).toBe(QUASAR_PIN_NAME);
  });

  it("adopts another user's direct pin: pins the whole DAG, never unpins it", async () => {
    // A two-leaf file: the direct pin holds its root block only.
    const cid = await addUnpinned(daemon, new Uint8Array(randomBytes(300 * 1024)), {
      "cid-version": "1",
      "raw-leaves": "true",
    });
    await daemon.rpc("pin/add", { arg: cid.toString(), recursive: "false", name: "theirs" });
    expect(await kubo.pins.getPin(cid, {})).toMatchObject({ direct: true, name: "theirs" });
    const text = cid.toString();
    await wantBriefly(text, 4);
    expect(await f.until(async () => (await f.row(kubo, text))?.status === "pinned")).toBe(true);
    expect(await f.row(kubo, text)).toMatchObject({ owned: false });
    // Kubo replaced the direct pin with the recursive one (one pin per CID).
    expect(await pinType(daemon, cid)).toBe(`recursive:${QUASAR_PIN_NAME}`);

    expect(await f.until(async () => (await f.row(kubo, text))?.status === "unpinned")).toBe(true);
    await f.reconciler.sweepOnce();
    await f.reconciler.waitIdle();
    expect(await pinType(daemon, cid)).toBeDefined();
    expect((await decisions(text)).map((d) => d.decision)).not.toContain("unpin");
    expect((await decisions(text)).find((d) => d.decision === "adopt")).toMatchObject({
      decision: "adopt",
      reason: expect.stringMatching(/pinned directly by someone else/),
    });
  });

  it("keeps CIDv0 and CIDv1 pins apart: Kubo pins by CID, not by multihash", async () => {
    // Kubo's add defaults: CIDv0 (dag-pb, no raw leaves). Another user pins the Qm… spelling;
    // Quasar's ledger holds CIDv1. On Kubo they are two pins of the same blocks.
    const v0 = await addUnpinned(daemon, new Uint8Array(randomBytes(500)));
    expect(v0.version).toBe(0);
    await daemon.rpc("pin/add", { arg: v0.toString(), name: "theirs" });
    const v1 = v0.toV1();
    expect(await kubo.pins.getPin(v1, {})).toBeUndefined();

    await wantBriefly(v1.toString(), 4);
    expect(await f.until(async () => (await f.row(kubo, v1.toString()))?.status === "pinned")).toBe(
      true,
    );
    // Quasar's own pin of its own spelling: owned, and unpinned when no longer desired.
    expect(await f.row(kubo, v1.toString())).toMatchObject({ owned: true });
    expect(await pinType(daemon, v1)).toBe(`recursive:${QUASAR_PIN_NAME}`);
    expect(await pinType(daemon, v0)).toBe("recursive:theirs");
    expect(
      await f.until(async () => (await f.row(kubo, v1.toString()))?.status === "unpinned"),
    ).toBe(true);
    expect(await pinType(daemon, v1)).toBeUndefined();
    // The other user's pin and its blocks are untouched.
    expect(await pinType(daemon, v0)).toBe("recursive:theirs");
    expect(await kubo.content.hasBlock(v1, {})).toBe(true);

    // The other way round: another user pinned the CIDv1 spelling Quasar uses: adopted.
    const theirs = (await addUnpinned(daemon, new Uint8Array(randomBytes(500)))).toV1();
    await daemon.rpc("pin/add", { arg: theirs.toString(), name: "theirs" });
    await wantBriefly(theirs.toString(), 3);
    expect(
      await f.until(async () => (await f.row(kubo, theirs.toString()))?.status === "unpinned"),
    ).toBe(true);
    expect(await pinType(daemon, theirs)).toBe("recursive:theirs");
    expect((await decisions(theirs.toString())).map((d) => d.decision)).not.toContain("unpin");
  });

  it("the window the notes leave open: a pin made between the look and Quasar's pin takes Quasar's name", async () => {
    // docs/operations.md: another application that pins a CID after Quasar's look and before
    // Quasar's pin shares a pin Quasar believes its own. This is Kubo's behaviour that makes
    // it so: one pin per CID, and the last pin/add's name wins.
    const cid = (await addUnpinned(daemon, new Uint8Array(randomBytes(200)))).toV1();
    expect(await kubo.pins.getPin(cid, {})).toBeUndefined(); // Quasar's look: nothing there
    await daemon.rpc("pin/add", { arg: cid.toString(), name: "theirs" }); // the other user
    await kubo.pins.pin(cid, { name: QUASAR_PIN_NAME }); // Quasar's pin
    const key = cid.toString();
    expect(await kubo.pins.getPin(cid, {})).toEqual({ cid, key, name: QUASAR_PIN_NAME });
    // …and the converse, which the unpin check relies on: a later pin by anyone renames it.
    await daemon.rpc("pin/add", { arg: cid.toString() });
    expect(await kubo.pins.getPin(cid, {})).toEqual({ cid, key });
  });
});

describe("a look made ahead of its pin (one pin at a time)", () => {
  let daemon: KuboDaemon;
  let f: EngineFixture;
  let kubo: ContentCapableBackend;

  const suite = kuboEngineSuite({
    QUASAR_PIN_CONCURRENCY: "1",
    QUASAR_PIN_INACTIVITY_TIMEOUT: "20s",
  });
  beforeAll(() => {
    ({ daemon, f, kubo } = suite);
  });

  it("is not trusted once stale: a foreign pin made while an earlier pin ran is adopted", async () => {
    // The worker looks for a foreign pin of the next row while the one slot pins a large DAG
    // (the daemon throttled, so it takes seconds). Another user pins that next CID after the
    // look; when its turn comes the look is too old to use, so a new look finds the other
    // user's pin. Pinning on the stale look would take the other user's pin as Quasar's.
    const big = await manyBlocks(daemon, 64);
    const small = (await addUnpinned(daemon, new Uint8Array(randomBytes(300)))).toV1();
    const release = throttle(daemon.pid() as number);
    try {
      await f.want(big.toString());
      expect(
        await f.until(async () => (await f.row(kubo, big.toString()))?.status === "pinning"),
      ).toBe(true);
      await f.want(small.toString());
      expect(
        await f.until(async () => (await f.row(kubo, small.toString()))?.status === "pinning"),
      ).toBe(true);
      // Claimed behind the large pin: its look is made now, and answers "not pinned".
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await daemon.rpc("pin/add", { arg: small.toString(), name: "theirs" });
      // The precondition that makes this test mean something: the large pin still runs.
      expect(await pinType(daemon, big)).toBeUndefined();
    } finally {
      await release();
    }
    expect(
      await f.until(async () => (await f.row(kubo, small.toString()))?.status === "pinned", 30_000),
    ).toBe(true);
    expect(await f.row(kubo, small.toString())).toMatchObject({ owned: false });
    expect(await pinType(daemon, small)).toBe("recursive:theirs");
    expect(await f.row(kubo, big.toString())).toMatchObject({ status: "pinned", owned: true });
  });
});

describe("Kubo's pin progress and the inactivity timeout", () => {
  let daemon: KuboDaemon;
  let backend: ContentCapableBackend;
  const TIMEOUT_MS = 1_000;

  beforeAll(async () => {
    daemon = await startKubo();
    backend = requireContent(createBackend(daemon.connectionString), "be tested");
    await backend.open();
  });
  afterAll(async () => {
    await backend?.close();
    await daemon?.destroy();
  });

  const pinWithTimeout = (cid: CID, onProgress?: () => void) =>
    withInactivityTimeout(
      ({ signal, progress }) =>
        backend.pins.pin(cid, {
          name: QUASAR_PIN_NAME,
          signal,
          onProgress: () => {
            progress();
            onProgress?.();
          },
        }),
      { timeoutMs: TIMEOUT_MS },
    );

  it("does not cut a pin that runs longer than the timeout while Kubo reports progress", async () => {
    // Progress comes from Kubo itself: pinning walks ~64,000 local 1 KiB blocks and
    // `pin/add?progress=true` reports the count every 500 ms; the daemon is throttled so the
    // walk outlasts the timeout on any machine.
    const cid = await manyBlocks(daemon, 64);
    const release = throttle(daemon.pid() as number);
    let reports = 0;
    const started = performance.now();
    try {
      await pinWithTimeout(cid, () => reports++);
    } finally {
      await release();
    }
    const elapsed = performance.now() - started;
    // Only a pin that outlasted the timeout shows anything.
    expect(elapsed).toBeGreaterThan(2 * TIMEOUT_MS);
    expect(reports).toBeGreaterThanOrEqual(2);
    expect(await backend.pins.getPin(cid, {})).toMatchObject({ name: QUASAR_PIN_NAME });
  });

  it("cuts a pin when Kubo stops reporting progress (the daemon frozen mid-pin)", async () => {
    // Offline Kubo refuses content it lacks at once (no stall to time out), so the stall is
    // made real: the daemon is frozen with SIGSTOP after its first progress report.
    const cid = await manyBlocks(daemon, 32);
    const pid = daemon.pid() as number;
    // Throttled, so the first report comes while the walk is far from done.
    const release = throttle(pid);
    let frozen = false;
    let started = performance.now();
    const failure = await pinWithTimeout(cid, () => {
      if (!frozen) {
        frozen = true;
        void release().then(() => {
          process.kill(pid, "SIGSTOP");
          started = performance.now();
        });
      }
    }).then(
      () => undefined,
      (error: unknown) => error,
    );
    const elapsed = performance.now() - started;
    await release();
    process.kill(pid, "SIGCONT");
    expect(frozen).toBe(true);
    expect(failure).toBeInstanceOf(PinInactivityError);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 5_000);
    // The daemon runs again and the pin can be made.
    await backend.pins.pin(cid, { name: QUASAR_PIN_NAME });
    expect(await backend.pins.getPin(cid, {})).toMatchObject({ name: QUASAR_PIN_NAME });
  });

  it("fails a pin of content nobody has at once, offline (never a silent wait)", async () => {
    const missing = CID.createV1(raw.code, await sha256.digest(new Uint8Array(randomBytes(32))));
    await expect(pinWithTimeout(missing)).rejects.toThrow(/not found locally \(offline\)/);
  });
});

describe("a Kubo daemon that goes away mid-stream or mid-pin", () => {
  let daemon: KuboDaemon;
  let f: EngineFixture;
  let kubo: ContentCapableBackend;

  const suite = kuboEngineSuite({ QUASAR_PIN_INACTIVITY_TIMEOUT: "5s" });
  beforeAll(() => {
    ({ daemon, f, kubo } = suite);
  });

  it("a cat cut by a daemon restart throws, never a short success; the restarted daemon serves it whole", async () => {
    const bytes = new Uint8Array(randomBytes(32 * 1024 * 1024));
    async function* content() {
      yield bytes;
    }
    const { cid } = await kubo.content.addFile(content(), { name: QUASAR_PIN_NAME });
    let received = 0;
    const failure = await (async () => {
      for await (const chunk of kubo.content.cat(cid, {})) {
        if (received === 0) await daemon.stop();
        received += chunk.byteLength;
      }
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(received).toBeLessThan(bytes.byteLength);
    expect(failure).toBeInstanceOf(BackendStreamError);
    await daemon.restart();
    let whole = 0;
    for await (const chunk of kubo.content.cat(cid, {})) whole += chunk.byteLength;
    expect(whole).toBe(bytes.byteLength);
  });

  it("a daemon killed mid-pin: the pin goes back to the queue and is made once Kubo is back", async () => {
    const cid = await manyBlocks(daemon, 32);
    const text = cid.toV1().toString();
    // Throttled: walking ~32,000 blocks then takes Kubo seconds on any machine.
    const release = throttle(daemon.pid() as number);
    await f.want(text);
    expect(await f.until(async () => (await f.row(kubo, text))?.status === "pinning", 10_000)).toBe(
      true,
    );
    // 700 ms in, the pin is under way.
    await new Promise((resolve) => setTimeout(resolve, 700));
    await release();
    await daemon.kill();
    expect(await kubo.pins.getPin(cid, {}).catch((error: unknown) => error)).toBeInstanceOf(
      BackendUnavailableError,
    );
    await daemon.restart();
    expect(await f.until(async () => (await f.row(kubo, text))?.status === "pinned", 60_000)).toBe(
      true,
    );
    expect(await kubo.pins.getPin(cid, {})).toMatchObject({ name: QUASAR_PIN_NAME });
    const log = await f.ledger
      .selectFrom("reconcile_log")
      .select(["decision", "outcome"])
      .where("backend_id", "=", kubo.id)
      .where("cid", "=", text)
      .orderBy("id")
      .execute();
    // The interrupted attempt is on record as failed (back to the queue: "recover" while the
    // daemon was down, or a retried "pin" error), and the last one made the pin.
    expect(log.some((entry) => entry.outcome === "error")).toBe(true);
    expect(log.at(-1)).toMatchObject({ decision: "pin", outcome: "ok" });
  });
});
