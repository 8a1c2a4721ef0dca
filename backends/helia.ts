import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { GraphWalkerFactory } from "@helia/interface";
import { type AddOptions, unixfs } from "@helia/unixfs";
import { CarBlockIterator } from "@ipld/car/iterator";
import { CarWriter } from "@ipld/car/writer";
import * as dagCbor from "@ipld/dag-cbor";
import * as dagJson from "@ipld/dag-json";
import { FsBlockstore } from "blockstore-fs";
import { FsDatastore } from "datastore-fs";
import { createHelia, createHeliaLight, type Helia } from "helia";
import { equals } from "multiformats/bytes";
import { CID } from "multiformats/cid";
import * as json from "multiformats/codecs/json";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import type { AddResult, Backend, DagNode, PinListing, PinOptions } from "./backend.js";
import { backendId, booleanParam, maskConnectionString } from "./connection-string.js";
import { DagPathError, resolveDagPath } from "./dag-path.js";
import {
  BackendAbortedError,
  BackendRequestError,
  BackendUnavailableError,
  ContentUnavailableError,
  InvalidConnectionStringError,
  InvalidDagValueError,
  isBackendError,
} from "./errors.js";
import { safeWalker } from "./helia-walker.js";
import { readUnixfsFile, UnixfsReadError } from "./unixfs-read.js";

/**
 * `helia://<directory>[?offline=true]`: an embedded, in-process IPFS node keeping blocks in
 * `<directory>/blocks` (blockstore-fs) and pins and metadata in `<directory>/data`
 * (datastore-fs). Relative directories resolve from the working directory.
 *
 * Query parameters:
 * - `offline=true`: no libp2p, no bitswap, no gateways. Starts in milliseconds; pins of
 *   content that is not stored locally fail at once with ContentUnavailableError. For tests
 *   and machines without a network.
 * - default (`offline=false`): helia's default libp2p (bootstrap peers, DHT client, bitswap)
 *   plus trustless HTTP gateways, so a PinHash for content uploaded elsewhere is fetched.
 */
export const HELIA_FORMS = ["helia://<directory>", "helia://<directory>?offline=true"] as const;

/** Settings of one embedded helia node. */
export type HeliaBackendParams = {
  /** Absolute directory of the node's stores. */
  directory: string;
  offline: boolean;
  id: string;
  label: string;
};

/** Parses the part of `helia://…` after the scheme. */
export function parseHeliaConnectionString(
  raw: string,
  rest: string,
  acceptedForms: readonly string[],
): HeliaBackendParams {
  const fail = (reason: string): never => {
    throw new InvalidConnectionStringError(maskConnectionString(raw), reason, acceptedForms);
  };
  const queryAt = rest.indexOf("?");
  const path = decodeURIComponent(queryAt === -1 ? rest : rest.slice(0, queryAt));
  const query = new URLSearchParams(queryAt === -1 ? "" : rest.slice(queryAt + 1));
  if (path.trim() === "")
    fail("no directory (e.g. helia://.quasar/ipfs or helia:///var/lib/quasar)");
  for (const key of query.keys()) {
    if (key !== "offline") fail(`unknown parameter "${key}" (known: offline)`);
  }
  const offline = booleanParam(query, "offline", fail) ?? false;
  const directory = resolve(path);
  return {
    directory,
    offline,
    id: backendId("helia", `helia://${directory}${offline ? "?offline=true" : ""}`),
    label: maskConnectionString(raw),
  };
}

/** Builds an embedded helia backend; nothing starts until open(). */
export function createHeliaBackend(params: HeliaBackendParams): Backend {
  const { label } = params;
  let node: Helia | undefined;
  let opening: Promise<Helia> | undefined;

  async function start(): Promise<Helia> {
    await mkdir(params.directory, { recursive: true });
    const blockstore = new FsBlockstore(join(params.directory, "blocks"));
    const datastore = new FsDatastore(join(params.directory, "data"));
    await blockstore.open();
    await datastore.open();
    try {
      const helia: Helia = params.offline
        ? // createHelia adds these codecs itself; the light node knows only dag-pb and raw.
          createHeliaLight({ blockstore, datastore, codecs: [dagCbor, dagJson, json] })
        : createHelia({ blockstore, datastore });
      await helia.start();
      return helia;
    } catch (error) {
      await Promise.allSettled([blockstore.close(), datastore.close()]);
      throw error;
    }
  }

  /**
   * Two processes (the API and the reconciler) may open one fresh directory at the same
   * moment; libp2p then writes its first keys twice and the loser fails with "Key … already
   * exists". The keys are there by then, so a second start simply loads them.
   */
  async function startTolerant(): Promise<Helia> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await start();
      } catch (error) {
        if (attempt >= 3 || !/already exists/i.test(describe(error))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  async function ready(): Promise<Helia> {
    if (node) return node;
    if (!opening) {
      opening = startTolerant().then(
        (started) => {
          node = started;
          return started;
        },
        (error: unknown) => {
          opening = undefined;
          throw new BackendUnavailableError(label, { cause: error, details: describe(error) });
        },
      );
    }
    return opening;
  }

  /** Maps helia's errors onto the backend error tree. */
  function fail(operation: string, error: unknown, cid?: CID, signal?: AbortSignal): never {
    if (signal?.aborted || nameOf(error) === "AbortError") {
      throw new BackendAbortedError(label, operation, { cause: error });
    }
    const name = nameOf(error);
    if (
      cid &&
      (name === "InvalidConfigurationError" ||
        name === "BlockNotFoundWhileOfflineError" ||
        name === "LoadBlockFailedError" ||
        name === "NotFoundError")
    ) {
      throw new ContentUnavailableError(label, cid.toString(), {
        cause: error,
        details: describe(error),
      });
    }
    if (error instanceof UnixfsReadError) {
      throw new BackendRequestError(label, operation, error.message, { cause: error });
    }
    if (error instanceof DagPathError)
      throw new BackendRequestError(label, operation, error.message, { cause: error });
    if (error instanceof Error && /ENOSPC|EACCES|EROFS|EMFILE/.test(error.message)) {
      throw new BackendUnavailableError(label, { cause: error, details: describe(error) });
    }
    throw new BackendRequestError(label, operation, describe(error), { cause: error });
  }

  async function hasRecursivePin(helia: Helia, cid: CID, signal?: AbortSignal): Promise<boolean> {
    try {
      return (await helia.pins.get(cid, { signal })).depth === Number.POSITIVE_INFINITY;
    } catch (error) {
      if (nameOf(error) === "NotFoundError") return false;
      throw error;
    }
  }

  async function pinWithName(helia: Helia, cid: CID, options: PinOptions): Promise<void> {
    options.signal?.throwIfAborted();
    // Not helia.pins.isPinned: that answers whether the BLOCK is pinned by anything, which is
    // also true for a block inside another pin's DAG, and for the root of a pin whose add was
    // cut short (the root's pinned-block record is written first, the pin record last) — in
    // both cases no recursive pin of this CID exists, and one must be made.
    if (await hasRecursivePin(helia, cid, options.signal)) return;
    let blocks = 0;
    try {
      for await (const _ of helia.pins.add(cid, {
        signal: options.signal,
        metadata: { name: options.name },
        walker: pinWalker(),
      })) {
        blocks += 1;
        options.onProgress?.(blocks);
      }
    } catch (error) {
      // A concurrent pin of the same CID won the race: pinned is what was asked.
      if (nameOf(error) === "AlreadyPinnedError") return;
      throw error;
    }
  }

  return {
    id: params.id,
    designator: "helia",
    label,
    // Embedded: only Quasar's own processes pin here, and they still check (cheap in-process).
    exclusive: false,

    async open() {
      await ready();
    },

    async close() {
      const current = node ?? (opening ? await opening.catch(() => undefined) : undefined);
      node = undefined;
      opening = undefined;
      await current?.stop();
    },

    async ping() {
      return node !== undefined && node.status === "started";
    },

    async pin(cid, options) {
      const helia = await ready();
      try {
        await pinWithName(helia, cid, options);
      } catch (error) {
        fail("pin", error, cid, options.signal);
      }
    },

    async unpin(cid, options) {
      const helia = await ready();
      try {
        for await (const _ of helia.pins.rm(cid, {
          signal: options.signal,
          walker: pinWalker(),
        })) {
          // draining the generator removes the pin
        }
      } catch (error) {
        if (nameOf(error) === "NotFoundError") return; // not pinned: idempotent success
        fail("unpin", error, undefined, options.signal);
      }
    },

    async *listPins(options) {
      const helia = await ready();
      try {
        for await (const pin of helia.pins.ls({ signal: options.signal })) {
          if (pin.depth !== Number.POSITIVE_INFINITY) continue; // recursive pins only
          yield toListing(pin.cid, pin.metadata);
        }
      } catch (error) {
        fail("listPins", error, undefined, options.signal);
      }
    },

    async getPin(cid, options) {
      const helia = await ready();
      try {
        const pin = await helia.pins.get(cid, { signal: options.signal });
        return pin.depth === Number.POSITIVE_INFINITY ? toListing(cid, pin.metadata) : undefined;
      } catch (error) {
        if (nameOf(error) === "NotFoundError") return undefined;
        return fail("getPin", error, undefined, options.signal);
      }
    },

    async storesPinNames() {
      // Pins keep the metadata of whoever pinned first (a second add is AlreadyPinnedError).
      return true;
    },

    async hasBlock(cid, options) {
      const helia = await ready();
      try {
        // BlockStorage.has only looks at the local blockstore; it never asks the network.
        return await helia.blockstore.has(cid, { signal: options.signal });
      } catch (error) {
        return fail("hasBlock", error, undefined, options.signal);
      }
    },

    async *exportCar(cid, options) {
      const helia = await ready();
      const { writer, out } = CarWriter.create([cid]);
      const walker = safeWalker()({ blockstore: helia.blockstore, getCodec: helia.getCodec });
      let failure: unknown;
      // The walk feeds the writer while the caller drains `out`: put() waits for the reader,
      // so memory stays at one block plus the set of visited CIDs.
      const producing = (async () => {
        try {
          const seen = new Set<string>();
          for await (const node of walker.walk(cid, { signal: options.signal })) {
            const key = node.block.cid.toString();
            if (seen.has(key)) continue;
            seen.add(key);
            await writer.put({ cid: node.block.cid as CID, bytes: node.block.bytes });
          }
        } catch (error) {
          failure = error;
        } finally {
          await writer.close();
        }
      })();
      try {
        for await (const chunk of out) yield chunk;
      } finally {
        await producing;
      }
      if (failure !== undefined) fail("exportCar", failure, cid, options.signal);
    },

    async importCar(car, options) {
      const helia = await ready();
      let roots: CID[];
      try {
        const blocks = await CarBlockIterator.fromIterable(car);
        roots = (await blocks.getRoots()) as CID[];
        for await (const block of blocks) {
          options.signal?.throwIfAborted();
          if (!(await matchesHash(helia, block.cid as CID, block.bytes))) {
            throw new BackendRequestError(
              label,
              "importCar",
              `block ${block.cid} does not match its hash`,
            );
          }
          await helia.blockstore.put(block.cid as CID, block.bytes, { signal: options.signal });
        }
      } catch (error) {
        // Errors of the CAR's source (another backend's broken export) keep their class.
        if (isBackendError(error)) throw error;
        return fail("importCar", error, undefined, options.signal);
      }
      for (const root of roots) {
        try {
          await pinWithName(helia, root, options);
        } catch (error) {
          fail("importCar", error, root, options.signal);
        }
      }
    },

    async addFile(content, options) {
      const helia = await ready();
      let size = 0;
      let sourceError: { error: unknown } | undefined;
      async function* counted(): AsyncGenerator<Uint8Array> {
        try {
          for await (const chunk of content) {
            size += chunk.byteLength;
            yield chunk;
          }
        } catch (error) {
          sourceError = { error };
          throw error;
        }
      }
      try {
        // Kubo's `add --cid-version=1` layout (256 KiB chunks, 174 links, raw leaves), so the
        // same bytes get the same CID on every backend. @helia/unixfs spreads its own defaults
        // (1 MiB chunks, 1024 links) under these options, and an explicit chunker or layout
        // wins over the profile's: so the chunker below cuts 256 KiB, and `layout` is given as
        // undefined (not omitted) so the importer falls back to the profile's 174 links.
        const leaves = pooledRawLeaves(options.signal);
        const cid = await unixfs(helia).addByteStream(counted(), {
          profile: "unixfs-v0-2015",
          cidVersion: 1,
          rawLeaves: true,
          signal: options.signal,
          layout: undefined,
          chunker: leaves.chunker,
          bufferImporter: leaves.bufferImporter,
          blockWriteConcurrency: BLOCK_WRITE_CONCURRENCY,
        });
        if (options.pin !== false) await pinWithName(helia, cid, options);
        return { cid, size } satisfies AddResult;
      } catch (error) {
        // The upload's own failure (cut off, over a limit) is the caller's, unchanged.
        if (sourceError) throw sourceError.error;
        return fail("addFile", error, undefined, options.signal);
      }
    },

    async putDag(value, options) {
      const helia = await ready();
      const codec = options.codec === "dag-json" ? dagJson : dagCbor;
      let bytes: Uint8Array;
      try {
        bytes = codec.encode(toIpld(value));
      } catch (error) {
        throw new InvalidDagValueError(`cannot encode the value as ${codec.name}`, {
          cause: error,
          details: describe(error),
        });
      }
      try {
        const cid = CID.createV1(codec.code, await sha256.digest(bytes));
        await helia.blockstore.put(cid, bytes, { signal: options.signal });
        if (options.pin !== false) await pinWithName(helia, cid, options);
        return cid;
      } catch (error) {
        return fail("putDag", error, undefined, options.signal);
      }
    },

    async getDag(cid, options) {
      const helia = await ready();
      try {
        const node = await resolveDagPath({
          root: cid,
          path: options.path,
          load: async (link) => {
            const codec = await helia.getCodec(link.code);
            return codec.decode(
              await collectBlock(helia.blockstore.get(link, { signal: options.signal })),
            );
          },
        });
        return node satisfies DagNode;
      } catch (error) {
        return fail("getDag", error, cid, options.signal);
      }
    },

    async *cat(cid, options) {
      const helia = await ready();
      try {
        yield* readUnixfsFile({
          root: cid,
          offset: options.offset,
          length: options.length,
          signal: options.signal,
          load: (link) => collectBlock(helia.blockstore.get(link, { signal: options.signal })),
        });
      } catch (error) {
        fail("cat", error, cid, options.signal);
      }
    },
  };
}

/**
 * The walker for pins.add and pins.rm, which read only each block's CID and links. A raw
 * block has no links, so one stored locally is not read at all: pinning a 1 GiB upload then
 * reads its ~25 dag-pb nodes instead of 1 GiB of leaves (garbage that raised the peak RSS by
 * ~20-30 MB). A raw block not stored here is fetched as before, so a pin still brings the
 * whole DAG. The CAR export keeps the plain walker: it needs every block's bytes.
 */
function pinWalker(): GraphWalkerFactory {
  const walker = safeWalker();
  return (components) => {
    const store = components.blockstore;
    const blockstore = new Proxy(store, {
      get(target, property) {
        if (property !== "get") {
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === "function" ? value.bind(target) : value;
        }
        return async function* get(cid: CID, options?: Parameters<typeof target.get>[1]) {
          if (cid.code === raw.code && (await target.has(cid, options))) {
            yield NO_BYTES;
            return;
          }
          yield* target.get(cid, options);
        };
      },
    });
    return walker({ ...components, blockstore });
  };
}
const NO_BYTES = new Uint8Array(0);

/** Kubo's default chunk (the unixfs-v0-2015 profile's): 256 KiB, so CIDs match Kubo's `add`. */
const CHUNK_SIZE = 262_144;
/** Leaves hashed and written at once during an import (the importer's default is 10). */
const BLOCK_WRITE_CONCURRENCY = 8;

/**
 * The importer's fixed-size chunker and raw-leaf writer, with the 256 KiB leaf buffers reused
 * once a leaf is on disk. The stock chunker allocates a fresh 256 KiB buffer for every leaf
 * (1 GiB of short-lived ArrayBuffers for a 1 GiB upload); V8 collects those only when the
 * external memory grows by tens of MB, so a big upload added ~100 MB of dead buffers to the
 * peak RSS. Reused buffers keep that garbage to the socket's own reads.
 *
 * Same leaves, same CIDs as the stock path: 256 KiB chunks (a shorter last one, an empty one
 * for an empty file), each stored as a raw block under CIDv1 raw + sha2-256. A buffer returns
 * to the pool only after the blockstore's put resolved (helia passes the bytes to the
 * filesystem write and keeps no reference); if the pool is empty a new buffer is allocated,
 * so the chunker never waits on the writer.
 */
function pooledRawLeaves(signal: AbortSignal | undefined): {
  chunker: NonNullable<AddOptions["chunker"]>;
  bufferImporter: NonNullable<AddOptions["bufferImporter"]>;
} {
  const free: Uint8Array[] = [];
  const pooled = new WeakSet<Uint8Array>();
  const acquire = (): Uint8Array => {
    const reused = free.pop();
    if (reused) return reused;
    const buffer = new Uint8Array(CHUNK_SIZE);
    pooled.add(buffer);
    return buffer;
  };
  return {
    async *chunker(source) {
      let current = acquire();
      let filled = 0;
      let emitted = false;
      for await (const input of source) {
        for (let offset = 0; offset < input.byteLength; ) {
          const take = Math.min(CHUNK_SIZE - filled, input.byteLength - offset);
          current.set(input.subarray(offset, offset + take), filled);
          filled += take;
          offset += take;
          if (filled === CHUNK_SIZE) {
            yield current;
            emitted = true;
            current = acquire();
            filled = 0;
          }
        }
      }
      // As the stock chunker: the remainder, or one empty chunk for an empty file.
      if (!emitted || filled > 0) yield current.subarray(0, filled);
    },
    async *bufferImporter(file, blockstore) {
      for await (const block of file.content) {
        yield async () => {
          const cid = CID.createV1(raw.code, await sha256.digest(block));
          await blockstore.put(cid, block, { signal });
          if (pooled.has(block)) free.push(block);
          return { cid, size: BigInt(block.byteLength), block };
        };
      }
    },
  };
}

function toListing(cid: CID, metadata: Record<string, string | number | boolean>): PinListing {
  const name = metadata.name;
  return typeof name === "string" ? { cid, name } : { cid };
}

/**
 * JSON values become IPLD the way Kubo's `dag put --input-codec=dag-json` reads them:
 * `{"/": "bafy…"}` is a link, `{"/": {"bytes": "…"}}` is bytes. Values that are already IPLD
 * (CID objects, Uint8Array) survive, because their JSON form is exactly that.
 */
function toIpld(value: unknown): unknown {
  if (value === undefined) throw new TypeError("undefined is not a JSON value");
  return dagJson.decode(dagJson.encode(JSON.parse(JSON.stringify(value, jsonReplacer)) as unknown));
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array)
    return { "/": { bytes: Buffer.from(value).toString("base64").replace(/=+$/, "") } };
  return value;
}

/** CAR files carry no integrity of their own: every block is checked against its CID before it is stored. */
async function matchesHash(helia: Helia, cid: CID, bytes: Uint8Array): Promise<boolean> {
  const hasher = await helia.getHasher(cid.multihash.code);
  const digest = await hasher.digest(bytes);
  return equals(digest.bytes, cid.multihash.bytes);
}

async function collectBlock(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks);
}

function nameOf(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}
