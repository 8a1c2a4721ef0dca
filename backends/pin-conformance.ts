import { randomBytes } from "node:crypto";
import { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContentCapableBackend } from "./backend.js";
import { absentCid, chunked, pinned } from "./conformance-support.js";
import { BackendAbortedError, ContentUnavailableError } from "./errors.js";
import { listingKey, type PinBackend, QUASAR_PIN_NAME } from "./pin-backend.js";

/**
 * The suite every PinBackend passes (backends/pin-backend.ts states the obligations). A pin
 * backend cannot store bytes itself, so the subject says how content reaches the node
 * unpinned (for helia and Kubo: their own content role with `pin: false`; for a cluster: its
 * IPFS peer), and how someone else pins behind Quasar's back.
 */
export type PinConformanceSubject = {
  pins: PinBackend;
  /** Stores a file's blocks where `pins` can fetch them, without pinning them. */
  storeFile(bytes: Uint8Array): Promise<CID>;
  /** Stores one DAG node (links may point at blocks that exist nowhere), without pinning it. */
  storeDag(value: unknown): Promise<CID>;
  /** Adds `bytes` and pins them directly on the node, not through `pins`, without Quasar's name. */
  pinForeign(bytes: Uint8Array): Promise<CID>;
  /** Releases everything the subject started (closing `pins` is the suite's). */
  cleanup(): Promise<void>;
};

/** A subject for a backend that plays both roles: content arrives through its own content role. */
export function pinSubjectOf(
  backend: ContentCapableBackend,
  rest: Pick<PinConformanceSubject, "pinForeign" | "cleanup">,
): PinConformanceSubject {
  return {
    pins: backend.pins,
    storeFile: async (bytes) =>
      (await backend.content.addFile(chunked(bytes, 64 * 1024), { name, pin: false })).cid,
    storeDag: (value) => backend.content.putDag(value, { name, pin: false }),
    ...rest,
  };
}

const name = QUASAR_PIN_NAME;

export function describePinConformance(
  label: string,
  makeSubject: () => Promise<PinConformanceSubject>,
): void {
  describe(`PinBackend conformance: ${label}`, () => {
    let subject: PinConformanceSubject;
    let pins: PinBackend;

    beforeAll(async () => {
      subject = await makeSubject();
      pins = subject.pins;
      await pins.open();
    });

    afterAll(async () => {
      await subject?.pins.close();
      await subject?.cleanup();
    });

    it("opens idempotently and answers ping", async () => {
      await pins.open();
      expect(await pins.ping()).toBe(true);
      expect(pins.id).toMatch(new RegExp(`^${pins.designator}-[0-9a-f]{12}$`));
    });

    it("pins with the name, and names come back", async () => {
      const cid = await subject.storeFile(randomBytes(300));
      expect(await pins.getPin(cid, {})).toBeUndefined();
      await pins.pin(cid, { name });
      expect((await pins.getPin(cid, {}))?.name).toBe(name);
      // Names come back, so the engine may rely on them at unpin time.
      expect(await pins.storesPinNames({})).toBe(true);
    });

    it("pins and unpins idempotently", async () => {
      const cid = await subject.storeFile(randomBytes(2048));
      await pins.pin(cid, { name });
      await pins.pin(cid, { name });
      expect(await pins.getPin(cid, {})).toBeDefined();
      await pins.unpin(cid, {});
      expect(await pins.getPin(cid, {})).toBeUndefined();
      await pins.unpin(cid, {});
      await pins.unpin(await absentCid(), {});
      // the blocks are still there, so pinning again is immediate
      await pins.pin(cid, { name });
      expect((await pins.getPin(cid, {}))?.name).toBe(name);
    });

    it("lists every recursive pin, streamed, with names", async () => {
      const a = await subject.storeFile(randomBytes(100));
      const b = await subject.storeDag({ n: randomBytes(4).toString("hex") });
      const unpinnedLater = await subject.storeFile(randomBytes(100));
      const neverPinned = await subject.storeFile(randomBytes(100));
      for (const cid of [a, b, unpinnedLater]) await pins.pin(cid, { name });
      await pins.unpin(unpinnedLater, {});
      // `pinned` keys by the CIDv1 spelling; files come in Kubo's add default, CIDv0.
      const all = await pinned(pins);
      expect(all.get(a.toV1().toString())).toBe(name);
      expect(all.get(b.toV1().toString())).toBe(name);
      expect(all.has(unpinnedLater.toV1().toString())).toBe(false);
      expect(all.has(neverPinned.toV1().toString())).toBe(false);
      // A listing's key, where the backend gives one, is its CID's normalised spelling: the
      // sweep compares keys, everything else reads the CID.
      for await (const pin of pins.listPins({})) {
        expect(listingKey(pin)).toBe(pin.cid.toV1().toString());
      }
      // streamed: the first pin arrives without draining the rest
      for await (const pin of pins.listPins({})) {
        expect(pin.cid).toBeInstanceOf(CID);
        break;
      }
    });

    it("answers getPin for pinned and unpinned CIDs", async () => {
      const cid = await subject.storeFile(randomBytes(300));
      await pins.pin(cid, { name });
      const pin = await pins.getPin(cid, {});
      // The same pin, in either CID spelling (a backend may list a CIDv0 as its CIDv1).
      expect(pin?.cid.toV1().toString()).toBe(cid.toV1().toString());
      expect(await pins.getPin(await absentCid(), {})).toBeUndefined();
    });

    it("aborts a pin of content that exists nowhere promptly, through the signal", async () => {
      const missing = await absentCid();
      const started = Date.now();
      const failure = await pins.pin(missing, { name, signal: AbortSignal.timeout(1_000) }).then(
        () => undefined,
        (error: unknown) => error,
      );
      // Offline nodes either wait for the network until the signal fires, or know at once
      // they cannot fetch: both are retryable, neither hangs.
      expect(
        failure instanceof BackendAbortedError || failure instanceof ContentUnavailableError,
      ).toBe(true);
      expect(Date.now() - started).toBeLessThan(8_000);
      expect(await pins.getPin(missing, {})).toBeUndefined();
      expect(await pins.ping()).toBe(true);
    });

    it("never pins a DAG whose linked raw block is missing", async () => {
      // The root is stored, its raw leaf exists nowhere: the pin must fail (or time out),
      // never record a pin of an incomplete DAG.
      const missingLeaf = await absentCid();
      const root = await subject.storeDag({
        leaf: { "/": missingLeaf.toString() },
        salt: randomBytes(8).toString("hex"),
      });
      const failure = await pins.pin(root, { name, signal: AbortSignal.timeout(1_000) }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(
        failure instanceof BackendAbortedError || failure instanceof ContentUnavailableError,
      ).toBe(true);
      expect(await pins.getPin(root, {})).toBeUndefined();
    });

    it("lists foreign pins without Quasar's name and never touches them", async () => {
      const foreign = await subject.pinForeign(randomBytes(4096));
      const listing = await pins.getPin(foreign, {});
      expect(listing).toBeDefined();
      expect(listing?.name).not.toBe(name);
      expect((await pinned(pins)).has(foreign.toString())).toBe(true);
      // Quasar's own work around it leaves it pinned.
      const ours = await subject.storeFile(randomBytes(4096));
      await pins.pin(ours, { name });
      await pins.unpin(ours, {});
      expect(await pins.getPin(foreign, {})).toBeDefined();
    });
  });
}
