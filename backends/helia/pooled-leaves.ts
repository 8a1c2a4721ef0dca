import * as dagPb from "@ipld/dag-pb";
import { UnixFS } from "ipfs-unixfs";
import type { ImporterOptions } from "ipfs-unixfs-importer";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { MAX_CHUNK_SIZE, type UnixfsAddOptions } from "../add-options.js";

const NO_BYTES = new Uint8Array(0);
/** Zero bytes to give a leaf's metadata the length of its data (the largest chunk Kubo allows). */
const ZEROS = new Uint8Array(MAX_CHUNK_SIZE);

/**
 * The importer's fixed-size chunker and leaf writer, with the leaf buffers reused once a leaf
 * is written. The stock chunker allocates a fresh buffer for every leaf (1 GiB of short-lived
 * ArrayBuffers for a 1 GiB upload in 256 KiB leaves); V8 collects those only when the external
 * memory grows by tens of MB, so a big upload added ~100 MB of dead buffers to the peak RSS.
 * The stock leaf writer also keeps every dag-pb leaf's data and encoded block in its result
 * until the layout reduces 174 of them into a parent (~90 MB for 256 KiB leaves).
 *
 * Same leaves, same CIDs as the stock path: `chunkSize` chunks (a shorter last one, an empty
 * one for an empty file); each leaf a raw block (CIDv1 raw) or a UnixFS `file` node in dag-pb
 * (CIDv0 or v1), sha2-256, as `options` say. A buffer returns to the pool once its leaf is
 * encoded and written (helia passes the bytes to the filesystem write and keeps no reference);
 * if the pool is empty a new buffer is allocated, so the chunker never waits on the writer.
 * Results carry the leaf's size but not its bytes: the importer reads `block` only to add
 * mtime/mode to a single leaf, which Quasar never sets, and `unixfs.data` only for its length.
 */
export function pooledLeaves(
  options: Pick<UnixfsAddOptions, "cidVersion" | "rawLeaves">,
  chunkSize: number,
  signal: AbortSignal | undefined,
): {
  chunker: NonNullable<ImporterOptions["chunker"]>;
  bufferImporter: NonNullable<ImporterOptions["bufferImporter"]>;
} {
  const free: Uint8Array[] = [];
  const pooled = new WeakSet<Uint8Array>();
  const acquire = (): Uint8Array => {
    const reused = free.pop();
    if (reused) return reused;
    const buffer = new Uint8Array(chunkSize);
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
          const take = Math.min(chunkSize - filled, input.byteLength - offset);
          current.set(input.subarray(offset, offset + take), filled);
          filled += take;
          offset += take;
          if (filled === chunkSize) {
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
      for await (const chunk of file.content) {
        yield async () => {
          let cid: CID;
          let size: number;
          let unixfsLeaf: UnixFS | undefined;
          if (options.rawLeaves) {
            cid = CID.createV1(raw.code, await sha256.digest(chunk));
            await blockstore.put(cid, chunk, { signal });
            size = chunk.byteLength;
          } else {
            const block = dagPb.encode({
              Data: new UnixFS({ type: "file", data: chunk }).marshal(),
              Links: [],
            });
            const digest = await sha256.digest(block);
            cid =
              options.cidVersion === 0 ? CID.createV0(digest) : CID.createV1(dagPb.code, digest);
            await blockstore.put(cid, block, { signal });
            size = block.byteLength;
            // The layout reads only the data's length: a view of zeros, not the chunk.
            unixfsLeaf = new UnixFS({ type: "file", data: ZEROS.subarray(0, chunk.byteLength) });
          }
          if (pooled.has(chunk)) free.push(chunk);
          return {
            cid,
            size: BigInt(size),
            block: NO_BYTES,
            ...(unixfsLeaf ? { unixfs: unixfsLeaf } : {}),
          };
        };
      }
    },
  };
}
