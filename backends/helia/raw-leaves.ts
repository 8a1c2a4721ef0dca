import type { AddOptions } from "@helia/unixfs";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";

/** Kubo's default chunk (the unixfs-v0-2015 profile's): 256 KiB, so CIDs match Kubo's `add`. */
export const CHUNK_SIZE = 262_144;

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
export function pooledRawLeaves(signal: AbortSignal | undefined): {
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
