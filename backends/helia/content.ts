import { CarBlockIterator } from "@ipld/car/iterator";
import { CarWriter } from "@ipld/car/writer";
import * as dagCbor from "@ipld/dag-cbor";
import * as dagJson from "@ipld/dag-json";
import type { Helia } from "helia";
import { importByteStream } from "ipfs-unixfs-importer";
import { equals } from "multiformats/bytes";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { KUBO_ADD_DEFAULTS } from "../add-options.js";
import type { AddResult, ContentBackend, DagNode } from "../content-backend.js";
import {
  BackendRequestError,
  InvalidDagValueError,
  isBackendError,
  UnsupportedImportError,
} from "../errors.js";
import { toIpld } from "../ipld-json.js";
import { resolveDagPath } from "./dag-path.js";
import { type HeliaNode, messageOf } from "./node.js";
import { pinWithName } from "./pins.js";
import { pooledLeaves } from "./pooled-leaves.js";
import { readUnixfsFile } from "./unixfs-read.js";
import { safeWalker } from "./walker.js";

/** Leaves hashed and written at once during an import (the importer's default is 10). */
const BLOCK_WRITE_CONCURRENCY = 8;

/** `only-hash`: the importer computes every CID and the blocks go nowhere. */
const DISCARDING_BLOCKSTORE = {
  async put(cid: CID): Promise<CID> {
    return cid;
  },
};

/** The content role of an embedded helia node: its blockstore, read and written directly. */
export function createHeliaContent(node: HeliaNode): ContentBackend {
  const { ready, fail } = node;
  const { label } = node.lifecycle;
  return {
    ...node.lifecycle,

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
      const unixfsOptions = options.unixfs ?? KUBO_ADD_DEFAULTS;
      const { chunker } = unixfsOptions;
      if (chunker.kind === "rabin") {
        // Measured: the importer's rabin (rabin-wasm) cuts other chunks than Kubo's Go rabin.
        throw new UnsupportedImportError(
          "the rabin chunker is not supported on a helia backend: its chunks differ from Kubo's, so the CID would too; use size-<bytes> or a Kubo backend",
        );
      }
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
        // Kubo's layout for the same options (unixfs-v0-2015: 174 links per node, links
        // first), so the same bytes get the same CID as Kubo's `add` on every backend. The
        // importer is called directly (not through @helia/unixfs, whose own defaults of 1 MiB
        // chunks and 1024 links sit under the options) for the DAG size Kubo answers and for
        // `only-hash`. The chunker and leaf writer reuse their buffers (see pooledLeaves).
        const leaves = pooledLeaves(unixfsOptions, chunker.size, options.signal);
        const imported = await importByteStream(
          counted(),
          unixfsOptions.onlyHash ? DISCARDING_BLOCKSTORE : helia.blockstore,
          {
            profile: "unixfs-v0-2015",
            cidVersion: unixfsOptions.cidVersion,
            rawLeaves: unixfsOptions.rawLeaves,
            chunker: leaves.chunker,
            bufferImporter: leaves.bufferImporter,
            blockWriteConcurrency: BLOCK_WRITE_CONCURRENCY,
          },
        );
        const cid = imported.cid;
        if (options.pin !== false && !unixfsOptions.onlyHash)
          await pinWithName(helia, cid, options);
        return { cid, size, dagSize: Number(imported.size) } satisfies AddResult;
      } catch (error) {
        // The upload's own failure (cut off, over a limit) is the caller's, unchanged.
        if (sourceError) throw sourceError.error;
        return fail("addFile", error, undefined, options.signal);
      }
    },

    async putBlock(cid, bytes, options) {
      const helia = await ready();
      if (!(await matchesHash(helia, cid, bytes))) {
        throw new BackendRequestError(
          label,
          "putBlock",
          `the bytes do not hash to ${cid.toString()}`,
        );
      }
      try {
        await helia.blockstore.put(cid, bytes, { signal: options.signal });
      } catch (error) {
        fail("putBlock", error, cid, options.signal);
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
          details: messageOf(error),
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

    async getBlock(cid, options) {
      const helia = await ready();
      try {
        // offline: a block not stored here fails at once instead of being asked of peers.
        return await collectBlock(
          helia.blockstore.get(cid, { signal: options.signal, offline: true }),
        );
      } catch (error) {
        return fail("getBlock", error, cid, options.signal);
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
