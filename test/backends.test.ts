import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { unixfs } from "@helia/unixfs";
import { FsBlockstore } from "blockstore-fs";
import { FsDatastore } from "datastore-fs";
import { createHeliaLight } from "helia";
import { importFile } from "ipfs-unixfs-importer";
import { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeContentConformance } from "@/backends/content-conformance.js";
import {
  BackendUnavailableError,
  type ContentCapableBackend,
  createBackend,
  QUASAR_PIN_NAME,
  requireContent,
} from "@/backends/index.js";
import { describePinConformance, pinSubjectOf } from "@/backends/pin-conformance.js";
import { RetryableError } from "@/core/errors.js";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";

/** Pins through the daemon's RPC directly, the way another user of a shared node would. */
async function pinForeignOnDaemon(daemon: IpfsDaemon, bytes: Uint8Array): Promise<CID> {
  const answer = await daemon.rpc(
    "add",
    { "cid-version": "1", pin: "true" },
    { field: "file", bytes },
  );
  const { Hash } = JSON.parse(answer) as { Hash: string };
  return CID.parse(Hash).toV1();
}

/** Both roles of the backend a connection string names (helia and Kubo play both). */
function bothRoles(raw: string): ContentCapableBackend {
  return requireContent(createBackend(raw), "run the content suite");
}

async function daemonSubject(form: "ipfs://" | "ipfs+http://") {
  const daemon = await startIpfsDaemon();
  const backend = bothRoles(daemon.connectionString.replace("ipfs://", form));
  return {
    backend,
    pinForeign: (bytes: Uint8Array) => pinForeignOnDaemon(daemon, bytes),
    cleanup: () => daemon.destroy(),
  };
}

for (const form of ["ipfs://", "ipfs+http://"] as const) {
  describePinConformance(`Kubo daemon via ${form}`, async () => {
    const subject = await daemonSubject(form);
    return pinSubjectOf(subject.backend, subject);
  });
  describeContentConformance(`Kubo daemon via ${form}`, () => daemonSubject(form));
}

/** An embedded helia backend in a temp dir; foreign pins are made by a second helia on the same stores. */
async function heliaSubject(query: string) {
  const directory = await mkdtemp(join(tmpdir(), "quasar-helia-"));
  const backend = bothRoles(`helia://${directory}${query}`);
  return {
    backend,
    // Behind the backend's back: close it, pin with a separate helia on the same stores, reopen.
    async pinForeign(bytes: Uint8Array) {
      await backend.close();
      const blockstore = new FsBlockstore(join(directory, "blocks"));
      const datastore = new FsDatastore(join(directory, "data"));
      await blockstore.open();
      await datastore.open();
      const helia = createHeliaLight({ blockstore, datastore });
      await helia.start();
      try {
        const cid = await unixfs(helia).addBytes(bytes, { cidVersion: 1, rawLeaves: true });
        for await (const _ of helia.pins.add(cid, { metadata: { owner: "someone-else" } })) {
          // drain
        }
        return cid;
      } finally {
        await helia.stop();
        await backend.open();
      }
    },
    cleanup: () => rm(directory, { recursive: true, force: true }),
  };
}

// The production default (networked: libp2p, bitswap and gateways) as well. This machine has
// no network, which is the point: it must still start, serve local content, and bound pins of
// absent content.
for (const [label, query] of [
  ["embedded helia (offline, temp dir)", "?offline=true"],
  ["embedded helia (networked default, no network reachable)", ""],
] as const) {
  describePinConformance(label, async () => {
    const subject = await heliaSubject(query);
    return pinSubjectOf(subject.backend, subject);
  });
  describeContentConformance(label, () => heliaSubject(query));
}

describe("Kubo backend when the daemon goes down and comes back", () => {
  let daemon: IpfsDaemon;
  let backend: ContentCapableBackend;

  beforeAll(async () => {
    daemon = await startIpfsDaemon();
    backend = bothRoles(daemon.connectionString);
    await backend.open();
  });

  afterAll(async () => {
    await backend?.close();
    await daemon?.destroy();
  });

  it("answers ping false and throws a retryable BackendUnavailableError while down, then works again", async () => {
    async function* bytes() {
      yield new TextEncoder().encode(`before ${Date.now()}`);
    }
    const before = await backend.content.addFile(bytes(), { name: QUASAR_PIN_NAME });
    await daemon.stop();

    expect(await backend.ping()).toBe(false);
    const failure = await backend.pins.pin(before.cid, { name: QUASAR_PIN_NAME }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(BackendUnavailableError);
    expect(failure).toBeInstanceOf(RetryableError);
    expect(String((failure as Error).message)).toContain(daemon.connectionString);
    await expect(backend.pins.getPin(before.cid, {})).rejects.toBeInstanceOf(
      BackendUnavailableError,
    );
    await expect(
      (async () => {
        for await (const _ of backend.pins.listPins({})) {
          // nothing arrives
        }
      })(),
    ).rejects.toBeInstanceOf(BackendUnavailableError);

    await daemon.restart();
    expect(await backend.ping()).toBe(true);
    await backend.pins.pin(before.cid, { name: QUASAR_PIN_NAME });
    expect((await backend.pins.getPin(before.cid, {}))?.name).toBe(QUASAR_PIN_NAME);
  });
});

// The API and the reconciler are separate processes that both open the default
// helia://.quasar/ipfs: two nodes on one directory must see each other's blocks and pins.
describe("two embedded helia nodes on one directory", () => {
  let directory: string;
  let api: ContentCapableBackend;
  let reconciler: ContentCapableBackend;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "quasar-helia-shared-"));
    api = bothRoles(`helia://${directory}?offline=true`);
    reconciler = bothRoles(`helia://${directory}?offline=true`);
    await api.open();
    await reconciler.open();
  });

  afterAll(async () => {
    await api?.close();
    await reconciler?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it("share blocks and pins, in both directions", async () => {
    async function* upload() {
      yield new TextEncoder().encode(`uploaded through the API ${Date.now()}`);
    }
    const { cid } = await api.content.addFile(upload(), { name: QUASAR_PIN_NAME });
    expect(api.id).toBe(reconciler.id);
    expect((await reconciler.pins.getPin(cid, {}))?.name).toBe(QUASAR_PIN_NAME);
    expect(await reconciler.content.hasBlock(cid, {})).toBe(true);
    await reconciler.pins.unpin(cid, {});
    expect(await api.pins.getPin(cid, {})).toBeUndefined();
    await reconciler.pins.pin(cid, { name: QUASAR_PIN_NAME });
    expect((await api.pins.getPin(cid, {}))?.name).toBe(QUASAR_PIN_NAME);
  });
});

// The supervisor starts the API and the reconciler together: two PROCESSES may open a fresh
// default (networked) directory at once, and libp2p then writes its first keys twice
// ("Key 'webrtc-direct-certificate-private-key' already exists" before the fix).
describe("two processes opening one fresh networked helia directory at once", () => {
  it("both open, whichever writes the keys first", async () => {
    const directory = await mkdtemp(join(tmpdir(), "quasar-helia-race-"));
    const fixture = fileURLToPath(new URL("./fixtures/open-helia.ts", import.meta.url));
    const openInChild = (repo: string) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn("tsx", [fixture, repo], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (chunk: Buffer) => {
          stderr += chunk.toString();
        });
        child.on("exit", (code) => resolve({ code, stderr }));
      });
    try {
      for (let round = 0; round < 2; round++) {
        const fresh = join(directory, `round-${round}`);
        await mkdir(fresh);
        const results = await Promise.all([openInChild(fresh), openInChild(fresh)]);
        expect(results).toEqual([
          { code: 0, stderr: "" },
          { code: 0, stderr: "" },
        ]);
      }
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});

// Uploads land on the first backend and are copied to the others by CID, so every backend
// must cut the same bytes into the same DAG: Kubo's default `add` (CIDv0, dag-pb leaves)
// (256 KiB chunks, balanced, 174 links per node). helia's own defaults (1 MiB, 1024 links)
// would give other CIDs for any file over 256 KiB.
describe("embedded helia stores files in Kubo's layout", () => {
  let daemon: IpfsDaemon;
  let directory: string;
  let helia: ContentCapableBackend;
  let kubo: ContentCapableBackend;

  beforeAll(async () => {
    daemon = await startIpfsDaemon();
    directory = await mkdtemp(join(tmpdir(), "quasar-helia-layout-"));
    helia = bothRoles(`helia://${directory}?offline=true`);
    kubo = bothRoles(daemon.connectionString);
    await helia.open();
    await kubo.open();
  });

  afterAll(async () => {
    await helia?.close();
    await kubo?.close();
    await daemon?.destroy();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  async function* pieces(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
    for (let offset = 0; offset < bytes.byteLength; offset += size) {
      yield bytes.subarray(offset, Math.min(offset + size, bytes.byteLength));
    }
  }

  it("gives Kubo's CIDs, whatever the input's pieces", async () => {
    const CHUNK = 256 * 1024;
    for (const size of [0, 1, CHUNK, CHUNK + 1, 2 * 1024 * 1024 + 123]) {
      const bytes = randomBytes(size);
      const fromKubo = await kubo.content.addFile(pieces(bytes, 64 * 1024), {
        name: QUASAR_PIN_NAME,
        pin: false,
      });
      const fromHelia = await helia.content.addFile(pieces(bytes, 100_003), {
        name: QUASAR_PIN_NAME,
        pin: false,
      });
      expect(fromHelia.cid.toString(), `${size} bytes`).toBe(fromKubo.cid.toString());
      expect(fromHelia.size).toBe(size);
    }
  });

  it("builds a second level after 174 leaves, as the unixfs-v0-2015 profile does", async () => {
    // 175 leaves: the root links two nodes (174 leaves and 1). Compared against the
    // importer's reference profile; a Kubo add of 44 MB would only be slower.
    const bytes = randomBytes(175 * 256 * 1024 - 5);
    const reference = await importFile(
      { content: bytes },
      { put: async (cid: CID) => cid },
      // Kubo's add defaults: CIDv0, dag-pb leaves.
      { profile: "unixfs-v0-2015" },
    );
    const added = await helia.content.addFile(pieces(bytes, 65_536), { name: QUASAR_PIN_NAME });
    expect(added.cid.toString()).toBe(reference.cid.toString());
    // Pinned through the pin walker (leaves by presence): every block is there to read back.
    expect((await helia.pins.getPin(added.cid, {}))?.name).toBe(QUASAR_PIN_NAME);
    let read = 0;
    for await (const chunk of helia.content.cat(added.cid, {})) read += chunk.byteLength;
    expect(read).toBe(bytes.byteLength);
  });
});

// helia's isPinned answers for the block, not for a recursive pin of that CID.
describe("embedded helia pins what was asked, whatever the block's other pins", () => {
  let directory: string;
  let backend: ContentCapableBackend;
  const chunk = (byte: number) => new Uint8Array(256 * 1024).fill(byte);
  async function* file(...chunks: Uint8Array[]) {
    for (const part of chunks) yield part;
  }

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "quasar-helia-pins-"));
    backend = bothRoles(`helia://${directory}?offline=true`);
    await backend.open();
  });

  afterAll(async () => {
    await backend?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it("pins a CID whose block is already inside another pin's DAG", async () => {
    // A file of one 256 KiB chunk is a single leaf block: the first leaf of the larger file.
    const outer = await backend.content.addFile(file(chunk(1), chunk(2)), {
      name: QUASAR_PIN_NAME,
    });
    const inner = await backend.content.addFile(file(chunk(1)), {
      name: QUASAR_PIN_NAME,
      pin: false,
    });
    expect(await backend.pins.getPin(outer.cid, {})).toBeDefined();
    expect(await backend.pins.getPin(inner.cid, {})).toBeUndefined();
    await backend.pins.pin(inner.cid, { name: QUASAR_PIN_NAME });
    expect(await backend.pins.getPin(inner.cid, {})).toBeDefined();
    const listed = new Set<string>();
    for await (const pin of backend.pins.listPins({})) listed.add(pin.cid.toV1().toString());
    expect(listed.has(inner.cid.toV1().toString())).toBe(true);
  });

  it("completes a pin whose earlier add was cut short after its first block", async () => {
    // An abort after the first block leaves the on-disk state a SIGKILL at that moment leaves:
    // the root's pinned-block record written, the pin record not.
    const { cid } = await backend.content.addFile(file(chunk(3), chunk(4), chunk(5)), {
      name: QUASAR_PIN_NAME,
      pin: false,
    });
    const cut = new AbortController();
    await expect(
      backend.pins.pin(cid, {
        name: QUASAR_PIN_NAME,
        signal: cut.signal,
        onProgress: () => cut.abort(),
      }),
    ).rejects.toThrow();
    expect(await backend.pins.getPin(cid, {})).toBeUndefined();
    await backend.pins.pin(cid, { name: QUASAR_PIN_NAME });
    expect((await backend.pins.getPin(cid, {}))?.name).toBe(QUASAR_PIN_NAME);
  });
});
