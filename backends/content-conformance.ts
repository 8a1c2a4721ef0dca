import { createHash, randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as dagPb from "@ipld/dag-pb";
import * as raw from "multiformats/codecs/raw";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KUBO_ADD_DEFAULTS } from "./add-options.js";
import { type ContentCapableBackend, requireContent } from "./backend.js";
import { absentCid, chunked, pinned, readAll } from "./conformance-support.js";
import { ContentUnavailableError } from "./errors.js";
import { createBackend } from "./index.js";
import { QUASAR_PIN_NAME } from "./pin-backend.js";
import { encodeDirectory } from "./unixfs-directory.js";

/**
 * The suite every ContentBackend passes (backends/content-backend.ts states the obligations).
 * Content backends pin what they store on the same node, so the subject is a backend playing
 * both roles, and "pinned" is checked through its pin role.
 */
export type ContentConformanceSubject = {
  backend: ContentCapableBackend;
  /** Releases everything the subject started (closing `backend` is the suite's). */
  cleanup(): Promise<void>;
};

const name = QUASAR_PIN_NAME;

export function describeContentConformance(
  label: string,
  makeSubject: () => Promise<ContentConformanceSubject>,
): void {
  describe(`ContentBackend conformance: ${label}`, () => {
    let subject: ContentConformanceSubject;
    let backend: ContentCapableBackend;
    // An independent embedded node, for CAR copies in both directions.
    let peer: ContentCapableBackend;
    let peerDir: string;

    beforeAll(async () => {
      subject = await makeSubject();
      backend = subject.backend;
      await backend.open();
      peerDir = await mkdtemp(join(tmpdir(), "quasar-conformance-peer-"));
      peer = requireContent(createBackend(`helia://${peerDir}?offline=true`), "be a CAR peer");
      await peer.open();
    });

    afterAll(async () => {
      await peer?.close();
      if (peerDir) await rm(peerDir, { recursive: true, force: true });
      await subject?.backend.close();
      await subject?.cleanup();
    });

    it("opens idempotently, answers ping, and shares its identity with the pin role", async () => {
      await backend.open();
      expect(await backend.content.ping()).toBe(true);
      expect(backend.content.id).toBe(backend.pins.id);
      expect(backend.content.label).toBe(backend.pins.label);
    });

    it("adds a small file and cats it back, pinned with the name", async () => {
      const bytes = new TextEncoder().encode(`hello quasar ${randomBytes(8).toString("hex")}`);
      const added = await backend.content.addFile(chunked(bytes, 5), { name });
      expect(added.size).toBe(bytes.byteLength);
      // Kubo's add defaults: CIDv0, the single leaf a dag-pb UnixFS node (its envelope counted).
      expect(added.cid.version).toBe(0);
      expect(added.cid.code).toBe(dagPb.code);
      expect(added.dagSize).toBeGreaterThan(bytes.byteLength);
      expect(Buffer.compare(await readAll(backend.content.cat(added.cid, {})), bytes)).toBe(0);
      expect((await backend.pins.getPin(added.cid, {}))?.name).toBe(name);
    });

    it("builds the DAG Kubo's add flags ask for: CIDv1 raw leaves, small chunks, only-hash", async () => {
      const { content, pins } = backend;
      const bytes = randomBytes(10_000);
      const v1 = await content.addFile(chunked(bytes, 3000), {
        name,
        unixfs: { ...KUBO_ADD_DEFAULTS, cidVersion: 1, rawLeaves: true },
      });
      expect(v1.cid.version).toBe(1);
      expect(v1.cid.code).toBe(raw.code); // one 10 kB chunk: a single raw leaf
      expect(v1.dagSize).toBe(bytes.byteLength);
      const small = await content.addFile(chunked(bytes, 3000), {
        name,
        unixfs: { ...KUBO_ADD_DEFAULTS, chunker: { kind: "size", size: 1024 } },
      });
      expect(small.cid.code).toBe(dagPb.code); // a root over ten leaves
      expect(Buffer.compare(await readAll(content.cat(small.cid, {})), bytes)).toBe(0);
      const fresh = randomBytes(5000);
      const hashed = await content.addFile(chunked(fresh, 5000), {
        name,
        unixfs: { ...KUBO_ADD_DEFAULTS, onlyHash: true },
      });
      expect(await content.hasBlock(hashed.cid, {})).toBe(false);
      expect(await pins.getPin(hashed.cid, {})).toBeUndefined();
      // The same bytes stored give the CID only-hash computed.
      const stored = await content.addFile(chunked(fresh, 999), { name, pin: false });
      expect(stored.cid.toString()).toBe(hashed.cid.toString());
    });

    it("puts a block under its CID (a directory node) and refuses bytes of another hash", async () => {
      const { content } = backend;
      const file = await content.addFile(chunked(randomBytes(100), 100), { name, pin: false });
      const dir = await encodeDirectory([{ name: "a", cid: file.cid, dagSize: file.dagSize }], 0);
      if (!dir) throw new Error("a one-entry directory is never sharded");
      await content.putBlock(dir.cid, dir.bytes, {});
      expect(await content.hasBlock(dir.cid, {})).toBe(true);
      expect(await backend.pins.getPin(dir.cid, {})).toBeUndefined();
      const other = await encodeDirectory([{ name: "b", cid: file.cid, dagSize: 1 }], 0);
      if (!other) throw new Error("a one-entry directory is never sharded");
      await expect(content.putBlock(other.cid, dir.bytes, {})).rejects.toThrow();
      expect(await content.hasBlock(other.cid, {})).toBe(false);
    });

    it("gets a block's bytes exactly as stored, and refuses one it does not hold", async () => {
      const { content } = backend;
      const file = await content.addFile(chunked(randomBytes(300_000), 4096), { name, pin: false });
      const dir = await encodeDirectory([{ name: "f", cid: file.cid, dagSize: file.dagSize }], 0);
      if (!dir) throw new Error("a one-entry directory is never sharded");
      await content.putBlock(dir.cid, dir.bytes, {});
      expect(Buffer.from(await content.getBlock(dir.cid, {})).equals(Buffer.from(dir.bytes))).toBe(
        true,
      );
      // A multi-chunk file's root (dag-pb) and a leaf it links to.
      const root = await content.getBlock(file.cid, {});
      const [first] = dagPb.decode(root).Links;
      if (!first) throw new Error("a 300 kB file has leaves");
      expect((await content.getBlock(first.Hash, {})).byteLength).toBeGreaterThan(200_000);
      await expect(content.getBlock(await absentCid(), {})).rejects.toBeInstanceOf(
        ContentUnavailableError,
      );
    });

    it("streams a multi-MB file in chunks, cats it whole and by range", async () => {
      const bytes = randomBytes(5 * 1024 * 1024 + 123);
      const added = await backend.content.addFile(chunked(bytes, 64 * 1024), { name });
      expect(added.size).toBe(bytes.byteLength);
      const back = await readAll(backend.content.cat(added.cid, {}));
      expect(createHash("sha256").update(back).digest("hex")).toBe(
        createHash("sha256").update(bytes).digest("hex"),
      );
      const range = await readAll(
        backend.content.cat(added.cid, { offset: 300_000, length: 1000 }),
      );
      expect(Buffer.compare(range, bytes.subarray(300_000, 301_000))).toBe(0);
      // Chunking of the input never changes the CID.
      const again = await backend.content.addFile(chunked(bytes, 1024 * 1024 - 7), { name });
      expect(again.cid.toString()).toBe(added.cid.toString());
    });

    it("lets a failing upload's own error through unchanged, and keeps working", async () => {
      class UploadCutOff extends Error {}
      const cutOff = new UploadCutOff("client went away");
      async function* failing(): AsyncGenerator<Uint8Array> {
        yield randomBytes(300 * 1024);
        throw cutOff;
      }
      await expect(backend.content.addFile(failing(), { name })).rejects.toBe(cutOff);
      expect(await backend.ping()).toBe(true);
      const after = await backend.content.addFile(chunked(randomBytes(10), 10), { name });
      expect(await backend.pins.getPin(after.cid, {})).toBeDefined();
    });

    it("puts DAG nodes (dag-cbor by default, dag-json on request) and gets them by path through links", async () => {
      const { content } = backend;
      const leaf = await content.putDag({ deep: { list: [1, 2, { word: "leaf" }] } }, { name });
      expect(leaf.code).toBe(0x71); // dag-cbor
      const root = await content.putDag(
        { child: { "/": leaf.toString() }, title: "root" },
        { name, codec: "dag-json" },
      );
      expect(root.code).toBe(0x0129); // dag-json
      expect((await content.getDag(root, {})).value).toMatchObject({ title: "root" });
      const whole = await content.getDag(leaf, {});
      expect(whole.value).toEqual({ deep: { list: [1, 2, { word: "leaf" }] } });
      const viaLink = await content.getDag(root, { path: "child/deep/list/2" });
      expect(viaLink.value).toEqual({ word: "leaf" });
      expect((await content.getDag(root, { path: "/child/deep/list/0" })).value).toBe(1);
      expect(await backend.pins.getPin(root, {})).toBeDefined();
      await expect(content.getDag(root, { path: "nothing/here" })).rejects.toThrow();
    });

    it("stores without pinning when asked (pin: false): blocks readable, no pin", async () => {
      const { content, pins } = backend;
      const bytes = randomBytes(700 * 1024); // several chunks: a root node over raw leaves
      const added = await content.addFile(chunked(bytes, 64 * 1024), { name, pin: false });
      expect(added.size).toBe(bytes.byteLength);
      expect(await content.hasBlock(added.cid, {})).toBe(true);
      expect(Buffer.compare(await readAll(content.cat(added.cid, {})), bytes)).toBe(0);
      expect(await pins.getPin(added.cid, {})).toBeUndefined();
      expect((await pinned(pins)).has(added.cid.toV1().toString())).toBe(false);

      const dag = await content.putDag(
        { unpinned: randomBytes(8).toString("hex") },
        { name, pin: false },
      );
      expect(await content.hasBlock(dag, {})).toBe(true);
      expect((await content.getDag(dag, {})).value).toHaveProperty("unpinned");
      expect(await pins.getPin(dag, {})).toBeUndefined();

      // Pinning afterwards is the ordinary pin, with the name.
      await pins.pin(added.cid, { name });
      expect((await pins.getPin(added.cid, {}))?.name).toBe(name);
      // The same CID is given with or without the pin.
      const again = await content.addFile(chunked(bytes, 100 * 1024), { name });
      expect(again.cid.toString()).toBe(added.cid.toString());
    });

    it("tells local blocks from absent ones quickly, without fetching", async () => {
      const added = await backend.content.addFile(chunked(randomBytes(1000), 1000), { name });
      expect(await backend.content.hasBlock(added.cid, {})).toBe(true);
      const started = Date.now();
      expect(await backend.content.hasBlock(await absentCid(), {})).toBe(false);
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it("copies a DAG as a CAR to another backend and back, pinned with the name there", async () => {
      const { content } = backend;
      const file = await content.addFile(chunked(randomBytes(700 * 1024), 100 * 1024), { name });
      await peer.content.importCar(content.exportCar(file.cid, {}), { name });
      expect((await peer.pins.getPin(file.cid, {}))?.name).toBe(name);
      expect(
        Buffer.compare(
          await readAll(peer.content.cat(file.cid, {})),
          await readAll(content.cat(file.cid, {})),
        ),
      ).toBe(0);

      const dag = await peer.content.putDag(
        { from: "peer", salt: randomBytes(8).toString("hex") },
        { name },
      );
      expect(await content.hasBlock(dag, {})).toBe(false);
      await content.importCar(peer.content.exportCar(dag, {}), { name });
      expect((await backend.pins.getPin(dag, {}))?.name).toBe(name);
      expect((await content.getDag(dag, { path: "from" })).value).toBe("peer");
    });

    it("never exports a short CAR for a DAG with a missing block", async () => {
      // The root is stored, its leaf exists nowhere: the export must fail (or be aborted),
      // never end as a valid-looking CAR the importer would pin as complete.
      const missingLeaf = await absentCid();
      const root = await backend.content.putDag(
        { leaf: { "/": missingLeaf.toString() }, salt: randomBytes(8).toString("hex") },
        { name, pin: false },
      );
      const failure = await readAll(
        backend.content.exportCar(root, { signal: AbortSignal.timeout(2_000) }),
      ).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(Error);
      expect(await backend.ping()).toBe(true);
    });
  });
}
