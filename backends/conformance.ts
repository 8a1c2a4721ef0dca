import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Backend, QUASAR_PIN_NAME } from "./backend.js";
import { BackendAbortedError, ContentUnavailableError } from "./errors.js";
import { parseBackends } from "./index.js";

/**
 * The suite every Backend passes (backends/backend.ts states the obligations). A backend
 * kind is tested by giving `describeBackendConformance` a way to make one, plus a way to pin
 * content behind its back (as another user of a shared node would).
 */
export type ConformanceSubject = {
  backend: Backend;
  /** Adds `bytes` and pins them directly on the node, not through `backend`, without Quasar's name. */
  pinForeign(bytes: Uint8Array): Promise<CID>;
  /** Releases everything the subject started. */
  cleanup(): Promise<void>;
};

const name = QUASAR_PIN_NAME;

/** A CID whose block exists nowhere: random bytes, never stored. */
async function absentCid(): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(randomBytes(32)));
}

async function* chunked(bytes: Uint8Array, chunkSize: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += chunkSize) {
    yield bytes.subarray(offset, Math.min(offset + chunkSize, bytes.byteLength));
  }
}

async function readAll(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

async function pinned(backend: Backend): Promise<Map<string, string | undefined>> {
  const pins = new Map<string, string | undefined>();
  for await (const pin of backend.listPins({})) pins.set(pin.cid.toV1().toString(), pin.name);
  return pins;
}

export function describeBackendConformance(
  label: string,
  makeSubject: () => Promise<ConformanceSubject>,
): void {
  describe(`Backend conformance: ${label}`, () => {
    let subject: ConformanceSubject;
    let backend: Backend;
    // An independent embedded node, for CAR copies in both directions.
    let peer: Backend;
    let peerDir: string;

    beforeAll(async () => {
      subject = await makeSubject();
      backend = subject.backend;
      await backend.open();
      peerDir = await mkdtemp(join(tmpdir(), "quasar-conformance-peer-"));
      [peer] = parseBackends([`helia://${peerDir}?offline=true`]) as [Backend];
      await peer.open();
    });

    afterAll(async () => {
      await peer?.close();
      if (peerDir) await rm(peerDir, { recursive: true, force: true });
      await subject?.backend.close();
      await subject?.cleanup();
    });

    it("opens idempotently and answers ping", async () => {
      await backend.open();
      expect(await backend.ping()).toBe(true);
    });

    it("adds a small file and cats it back, pinned with the name", async () => {
      const bytes = new TextEncoder().encode(`hello quasar ${randomBytes(8).toString("hex")}`);
      const added = await backend.addFile(chunked(bytes, 5), { name });
      expect(added.size).toBe(bytes.byteLength);
      expect(added.cid.version).toBe(1);
      expect(added.cid.code).toBe(raw.code); // a single raw leaf (raw leaves, CIDv1)
      expect(Buffer.compare(await readAll(backend.cat(added.cid, {})), Buffer.from(bytes))).toBe(0);
      expect((await backend.getPin(added.cid, {}))?.name).toBe(name);
      // Names come back, so the engine may rely on them at unpin time.
      expect(await backend.storesPinNames({})).toBe(true);
    });

    it("streams a multi-MB file in chunks, cats it whole and by range", async () => {
      const bytes = randomBytes(5 * 1024 * 1024 + 123);
      const added = await backend.addFile(chunked(bytes, 64 * 1024), { name });
      expect(added.size).toBe(bytes.byteLength);
      const back = await readAll(backend.cat(added.cid, {}));
      expect(createHash("sha256").update(back).digest("hex")).toBe(
        createHash("sha256").update(bytes).digest("hex"),
      );
      const range = await readAll(backend.cat(added.cid, { offset: 300_000, length: 1000 }));
      expect(Buffer.compare(range, bytes.subarray(300_000, 301_000))).toBe(0);
      // Chunking of the input never changes the CID.
      const again = await backend.addFile(chunked(bytes, 1024 * 1024 - 7), { name });
      expect(again.cid.toString()).toBe(added.cid.toString());
    });

    it("lets a failing upload's own error through unchanged, and keeps working", async () => {
      class UploadCutOff extends Error {}
      const cutOff = new UploadCutOff("client went away");
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield randomBytes(300 * 1024);
        throw cutOff;
      }
      await expect(backend.addFile(failing(), { name })).rejects.toBe(cutOff);
      expect(await backend.ping()).toBe(true);
      const after = await backend.addFile(chunked(randomBytes(10), 10), { name });
      expect(await backend.getPin(after.cid, {})).toBeDefined();
    });

    it("puts DAG nodes (dag-cbor by default, dag-json on request) and gets them by path through links", async () => {
      const leaf = await backend.putDag({ deep: { list: [1, 2, { word: "leaf" }] } }, { name });
      expect(leaf.code).toBe(0x71); // dag-cbor
      const root = await backend.putDag(
        { child: { "/": leaf.toString() }, title: "root" },
        { name, codec: "dag-json" },
      );
      expect(root.code).toBe(0x0129); // dag-json
      expect((await backend.getDag(root, {})).value).toMatchObject({ title: "root" });
      const whole = await backend.getDag(leaf, {});
      expect(whole.value).toEqual({ deep: { list: [1, 2, { word: "leaf" }] } });
      const viaLink = await backend.getDag(root, { path: "child/deep/list/2" });
      expect(viaLink.value).toEqual({ word: "leaf" });
      expect((await backend.getDag(root, { path: "/child/deep/list/0" })).value).toBe(1);
      expect(await backend.getPin(root, {})).toBeDefined();
      await expect(backend.getDag(root, { path: "nothing/here" })).rejects.toThrow();
    });

    it("pins and unpins idempotently", async () => {
      const added = await backend.addFile(chunked(randomBytes(2048), 512), { name });
      await backend.pin(added.cid, { name });
      await backend.pin(added.cid, { name });
      expect(await backend.getPin(added.cid, {})).toBeDefined();
      await backend.unpin(added.cid, {});
      expect(await backend.getPin(added.cid, {})).toBeUndefined();
      await backend.unpin(added.cid, {});
      await backend.unpin(await absentCid(), {});
      // the blocks are still there, so pinning again is immediate
      await backend.pin(added.cid, { name });
      expect((await backend.getPin(added.cid, {}))?.name).toBe(name);
    });

    it("stores without pinning when asked (pin: false): blocks readable, no pin", async () => {
      const bytes = randomBytes(700 * 1024); // several chunks: a root node over raw leaves
      const added = await backend.addFile(chunked(bytes, 64 * 1024), { name, pin: false });
      expect(added.size).toBe(bytes.byteLength);
      expect(await backend.hasBlock(added.cid, {})).toBe(true);
      expect(Buffer.compare(await readAll(backend.cat(added.cid, {})), bytes)).toBe(0);
      expect(await backend.getPin(added.cid, {})).toBeUndefined();
      expect((await pinned(backend)).has(added.cid.toString())).toBe(false);

      const dag = await backend.putDag(
        { unpinned: randomBytes(8).toString("hex") },
        { name, pin: false },
      );
      expect(await backend.hasBlock(dag, {})).toBe(true);
      expect((await backend.getDag(dag, {})).value).toHaveProperty("unpinned");
      expect(await backend.getPin(dag, {})).toBeUndefined();

      // Pinning afterwards is the ordinary pin, with the name.
      await backend.pin(added.cid, { name });
      expect((await backend.getPin(added.cid, {}))?.name).toBe(name);
      // The same CID is given with or without the pin.
      const again = await backend.addFile(chunked(bytes, 100 * 1024), { name });
      expect(again.cid.toString()).toBe(added.cid.toString());
    });

    it("lists every recursive pin, streamed, with names", async () => {
      const a = await backend.addFile(chunked(randomBytes(100), 100), { name });
      const b = await backend.putDag({ n: randomBytes(4).toString("hex") }, { name });
      const unpinnedLater = await backend.addFile(chunked(randomBytes(100), 100), { name });
      await backend.unpin(unpinnedLater.cid, {});
      const pins = await pinned(backend);
      expect(pins.get(a.cid.toString())).toBe(name);
      expect(pins.get(b.toString())).toBe(name);
      expect(pins.has(unpinnedLater.cid.toString())).toBe(false);
      // streamed: the first pin arrives without draining the rest
      for await (const pin of backend.listPins({})) {
        expect(pin.cid).toBeInstanceOf(CID);
        break;
      }
    });

    it("answers getPin for pinned and unpinned CIDs", async () => {
      const added = await backend.addFile(chunked(randomBytes(300), 300), { name });
      const pin = await backend.getPin(added.cid, {});
      expect(pin?.cid.toString()).toBe(added.cid.toString());
      expect(await backend.getPin(await absentCid(), {})).toBeUndefined();
    });

    it("tells local blocks from absent ones quickly, without fetching", async () => {
      const added = await backend.addFile(chunked(randomBytes(1000), 1000), { name });
      expect(await backend.hasBlock(added.cid, {})).toBe(true);
      const started = Date.now();
      expect(await backend.hasBlock(await absentCid(), {})).toBe(false);
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it("copies a DAG as a CAR to another backend and back, pinned with the name there", async () => {
      const file = await backend.addFile(chunked(randomBytes(700 * 1024), 100 * 1024), { name });
      await peer.importCar(backend.exportCar(file.cid, {}), { name });
      expect((await peer.getPin(file.cid, {}))?.name).toBe(name);
      expect(
        Buffer.compare(
          await readAll(peer.cat(file.cid, {})),
          await readAll(backend.cat(file.cid, {})),
        ),
      ).toBe(0);

      const dag = await peer.putDag(
        { from: "peer", salt: randomBytes(8).toString("hex") },
        { name },
      );
      expect(await backend.hasBlock(dag, {})).toBe(false);
      await backend.importCar(peer.exportCar(dag, {}), { name });
      expect((await backend.getPin(dag, {}))?.name).toBe(name);
      expect((await backend.getDag(dag, { path: "from" })).value).toBe("peer");
    });

    it("aborts a pin of content that exists nowhere promptly, through the signal", async () => {
      const missing = await absentCid();
      const started = Date.now();
      const failure = await backend.pin(missing, { name, signal: AbortSignal.timeout(1_000) }).then(
        () => undefined,
        (error: unknown) => error,
      );
      // Offline nodes either wait for the network until the signal fires, or know at once
      // they cannot fetch: both are retryable, neither hangs.
      expect(
        failure instanceof BackendAbortedError || failure instanceof ContentUnavailableError,
      ).toBe(true);
      expect(Date.now() - started).toBeLessThan(8_000);
      expect(await backend.getPin(missing, {})).toBeUndefined();
      expect(await backend.ping()).toBe(true);
    });

    it("never pins a DAG whose linked raw block is missing", async () => {
      // The root is stored, its raw leaf exists nowhere: the pin must fail (or time out),
      // never record a pin of an incomplete DAG.
      const missingLeaf = await absentCid();
      const root = await backend.putDag(
        { leaf: { "/": missingLeaf.toString() }, salt: randomBytes(8).toString("hex") },
        { name, pin: false },
      );
      expect(await backend.hasBlock(root, {})).toBe(true);
      const failure = await backend.pin(root, { name, signal: AbortSignal.timeout(1_000) }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(
        failure instanceof BackendAbortedError || failure instanceof ContentUnavailableError,
      ).toBe(true);
      expect(await backend.getPin(root, {})).toBeUndefined();
    });

    it("lists foreign pins without Quasar's name and never touches them", async () => {
      const foreignBytes = randomBytes(4096);
      const foreign = await subject.pinForeign(foreignBytes);
      const listing = await backend.getPin(foreign, {});
      expect(listing).toBeDefined();
      expect(listing?.name).not.toBe(name);
      expect((await pinned(backend)).has(foreign.toString())).toBe(true);
      // Quasar's own work around it leaves it pinned.
      const ours = await backend.addFile(chunked(randomBytes(4096), 1024), { name });
      await backend.unpin(ours.cid, {});
      expect(await backend.getPin(foreign, {})).toBeDefined();
      expect(Buffer.compare(await readAll(backend.cat(foreign, {})), foreignBytes)).toBe(0);
    });
  });
}
