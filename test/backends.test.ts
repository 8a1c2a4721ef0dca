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
import { type Backend, QUASAR_PIN_NAME } from "@/backends/backend.js";
import { describeBackendConformance } from "@/backends/conformance.js";
import { BackendUnavailableError, parseBackends } from "@/backends/index.js";
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

for (const form of ["ipfs://", "ipfs+http://"] as const) {
  describeBackendConformance(`Kubo daemon via ${form}`, async () => {
    const daemon = await startIpfsDaemon();
    const [backend] = parseBackends([daemon.connectionString.replace("ipfs://", form)]) as [
      Backend,
    ];
    return {
      backend,
      pinForeign: (bytes) => pinForeignOnDaemon(daemon, bytes),
      cleanup: () => daemon.destroy(),
    };
  });
}

/** An embedded helia backend in a temp dir; foreign pins are made by a second helia on the same stores. */
async function heliaSubject(query: string) {
  const directory = await mkdtemp(join(tmpdir(), "quasar-helia-"));
  const [backend] = parseBackends([`helia://${directory}${query}`]) as [Backend];
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

describeBackendConformance("embedded helia (offline, temp dir)", () =>
  heliaSubject("?offline=true"),
);

// The production default: libp2p, bitswap and gateways. This machine has no network, which
// is the point: it must still start, serve local content, and bound pins of absent content.
describeBackendConformance("embedded helia (networked default, no network reachable)", () =>
  heliaSubject(""),
);

describe("Kubo backend when the daemon goes down and comes back", () => {
  let daemon: IpfsDaemon;
  let backend: Backend;

  beforeAll(async () => {
    daemon = await startIpfsDaemon();
    [backend] = parseBackends([daemon.connectionString]) as [Backend];
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
    const before = await backend.addFile(bytes(), { name: QUASAR_PIN_NAME });
    await daemon.stop();

    expect(await backend.ping()).toBe(false);
    const failure = await backend.pin(before.cid, { name: QUASAR_PIN_NAME }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(BackendUnavailableError);
    expect(failure).toBeInstanceOf(RetryableError);
    expect(String((failure as Error).message)).toContain(daemon.connectionString);
    await expect(backend.getPin(before.cid, {})).rejects.toBeInstanceOf(BackendUnavailableError);
    await expect(
      (async () => {
        for await (const _ of backend.listPins({})) {
          // nothing arrives
        }
      })(),
    ).rejects.toBeInstanceOf(BackendUnavailableError);

    await daemon.restart();
    expect(await backend.ping()).toBe(true);
    await backend.pin(before.cid, { name: QUASAR_PIN_NAME });
    expect((await backend.getPin(before.cid, {}))?.name).toBe(QUASAR_PIN_NAME);
  });
});

// The API and the reconciler are separate processes that both open the default
// helia://.quasar/ipfs: two nodes on one directory must see each other's blocks and pins.
describe("two embedded helia nodes on one directory", () => {
  let directory: string;
  let api: Backend;
  let reconciler: Backend;

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "quasar-helia-shared-"));
    [api] = parseBackends([`helia://${directory}?offline=true`]) as [Backend];
    [reconciler] = parseBackends([`helia://${directory}?offline=true`]) as [Backend];
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
    const { cid } = await api.addFile(upload(), { name: QUASAR_PIN_NAME });
    expect(api.id).toBe(reconciler.id);
    expect((await reconciler.getPin(cid, {}))?.name).toBe(QUASAR_PIN_NAME);
    expect(await reconciler.hasBlock(cid, {})).toBe(true);
    await reconciler.unpin(cid, {});
    expect(await api.getPin(cid, {})).toBeUndefined();
    await reconciler.pin(cid, { name: QUASAR_PIN_NAME });
    expect((await api.getPin(cid, {}))?.name).toBe(QUASAR_PIN_NAME);
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
// must cut the same bytes into the same DAG: Kubo's `add --cid-version=1 --raw-leaves`
// (256 KiB chunks, balanced, 174 links per node). helia's own defaults (1 MiB, 1024 links)
// would give other CIDs for any file over 256 KiB.
describe("embedded helia stores files in Kubo's layout", () => {
  let daemon: IpfsDaemon;
  let directory: string;
  let helia: Backend;
  let kubo: Backend;

  beforeAll(async () => {
    daemon = await startIpfsDaemon();
    directory = await mkdtemp(join(tmpdir(), "quasar-helia-layout-"));
    [helia, kubo] = parseBackends([
      `helia://${directory}?offline=true`,
      daemon.connectionString,
    ]) as [Backend, Backend];
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
      const fromKubo = await kubo.addFile(pieces(bytes, 64 * 1024), {
        name: QUASAR_PIN_NAME,
        pin: false,
      });
      const fromHelia = await helia.addFile(pieces(bytes, 100_003), {
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
      {
        profile: "unixfs-v0-2015",
        cidVersion: 1,
        rawLeaves: true,
      },
    );
    const added = await helia.addFile(pieces(bytes, 65_536), { name: QUASAR_PIN_NAME });
    expect(added.cid.toString()).toBe(reference.cid.toString());
    // Pinned through the pin walker (leaves by presence): every block is there to read back.
    expect((await helia.getPin(added.cid, {}))?.name).toBe(QUASAR_PIN_NAME);
    let read = 0;
    for await (const chunk of helia.cat(added.cid, {})) read += chunk.byteLength;
    expect(read).toBe(bytes.byteLength);
  });
});

// helia's isPinned answers for the block, not for a recursive pin of that CID.
describe("embedded helia pins what was asked, whatever the block's other pins", () => {
  let directory: string;
  let backend: Backend;
  const chunk = (byte: number) => new Uint8Array(256 * 1024).fill(byte);
  async function* file(...chunks: Uint8Array[]) {
    for (const part of chunks) yield part;
  }

  beforeAll(async () => {
    directory = await mkdtemp(join(tmpdir(), "quasar-helia-pins-"));
    [backend] = parseBackends([`helia://${directory}?offline=true`]) as [Backend];
    await backend.open();
  });

  afterAll(async () => {
    await backend?.close();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it("pins a CID whose block is already inside another pin's DAG", async () => {
    // One 256 KiB chunk with raw leaves is a single raw block: the leaf of the larger file.
    const outer = await backend.addFile(file(chunk(1), chunk(2)), { name: QUASAR_PIN_NAME });
    const inner = await backend.addFile(file(chunk(1)), { name: QUASAR_PIN_NAME, pin: false });
    expect(await backend.getPin(outer.cid, {})).toBeDefined();
    expect(await backend.getPin(inner.cid, {})).toBeUndefined();
    await backend.pin(inner.cid, { name: QUASAR_PIN_NAME });
    expect(await backend.getPin(inner.cid, {})).toBeDefined();
    const listed = new Set<string>();
    for await (const pin of backend.listPins({})) listed.add(pin.cid.toString());
    expect(listed.has(inner.cid.toString())).toBe(true);
  });

  it("completes a pin whose earlier add was cut short after its first block", async () => {
    // An abort after the first block leaves the on-disk state a SIGKILL at that moment leaves:
    // the root's pinned-block record written, the pin record not.
    const { cid } = await backend.addFile(file(chunk(3), chunk(4), chunk(5)), {
      name: QUASAR_PIN_NAME,
      pin: false,
    });
    const cut = new AbortController();
    await expect(
      backend.pin(cid, {
        name: QUASAR_PIN_NAME,
        signal: cut.signal,
        onProgress: () => cut.abort(),
      }),
    ).rejects.toThrow();
    expect(await backend.getPin(cid, {})).toBeUndefined();
    await backend.pin(cid, { name: QUASAR_PIN_NAME });
    expect((await backend.getPin(cid, {}))?.name).toBe(QUASAR_PIN_NAME);
  });
});
