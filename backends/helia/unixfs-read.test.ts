import { randomBytes } from "node:crypto";
import { unixfs } from "@helia/unixfs";
import fc from "fast-check";
import { createHeliaLight, type Helia } from "helia";
import { fixedSize } from "ipfs-unixfs-importer/chunker";
import { balanced, trickle } from "ipfs-unixfs-importer/layout";
import type { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readUnixfsFile, UnixfsReadError } from "./unixfs-read.js";

/**
 * readUnixfsFile against the reference: the bytes that were imported, for every layout the
 * importers produce (raw or dag-pb leaves, balanced or trickle, deep trees from tiny chunks).
 */
describe("readUnixfsFile", () => {
  let helia: Helia;

  beforeAll(async () => {
    helia = await createHeliaLight().start(); // in-memory stores
  });
  afterAll(async () => {
    await helia?.stop();
  });

  const load = async (cid: CID) => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of helia.blockstore.get(cid)) chunks.push(chunk);
    return Buffer.concat(chunks);
  };

  async function read(root: CID, offset?: number, length?: number): Promise<Buffer> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of readUnixfsFile({ root, offset, length, load })) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  const layouts = {
    "raw leaves, balanced, 4 links per node, 1 KiB chunks (a deep tree)": {
      rawLeaves: true,
      chunker: fixedSize({ chunkSize: 1024 }),
      layout: balanced({ maxChildrenPerNode: 4 }),
    },
    "dag-pb leaves, trickle, 1 KiB chunks": {
      rawLeaves: false,
      chunker: fixedSize({ chunkSize: 1024 }),
      layout: trickle({ maxChildrenPerNode: 5, layerRepeat: 2 }),
    },
    "Kubo's default layout (256 KiB, 174 links, raw leaves)": {
      profile: "unixfs-v0-2015" as const,
      cidVersion: 1 as const,
      rawLeaves: true,
    },
    "dag-pb leaves, data kept in a single root node": {
      rawLeaves: false,
      reduceSingleLeafToSelf: true,
    },
  };

  for (const [label, options] of Object.entries(layouts)) {
    it(`reads whole files and any range: ${label}`, async () => {
      for (const size of [0, 1, 1023, 1024, 1025, 70_001, 600_000]) {
        const bytes = randomBytes(size);
        const root = await unixfs(helia).addBytes(bytes, options);
        expect(Buffer.compare(await read(root), bytes)).toBe(0);
        await fc.assert(
          fc.asyncProperty(
            fc.nat(size + 10),
            fc.option(fc.nat(size + 10), { nil: undefined }),
            async (offset, length) => {
              const expected = bytes.subarray(
                Math.min(offset, size),
                length === undefined ? size : Math.min(size, offset + length),
              );
              expect(Buffer.compare(await read(root, offset, length), expected)).toBe(0);
            },
          ),
          { numRuns: 15 },
        );
      }
    });
  }

  it("loads only a bounded number of blocks ahead of a reader that stops", async () => {
    const bytes = randomBytes(200 * 1024);
    const root = await unixfs(helia).addBytes(bytes, {
      rawLeaves: true,
      chunker: fixedSize({ chunkSize: 1024 }),
      layout: balanced({ maxChildrenPerNode: 1000 }),
    });
    let loads = 0;
    for await (const _ of readUnixfsFile({
      root,
      load: (cid) => {
        loads += 1;
        return load(cid);
      },
    })) {
      break; // the first 1 KiB is enough
    }
    // the root, the block being read, and a window of 8 ahead of it: not the 200 leaves
    expect(loads).toBeLessThanOrEqual(1 + 1 + 8);
  });

  it("refuses directories, other codecs and negative ranges", async () => {
    const directory = await unixfs(helia).addDirectory();
    await expect(read(directory)).rejects.toBeInstanceOf(UnixfsReadError);
    const file = await unixfs(helia).addBytes(randomBytes(10));
    await expect(read(file, -1)).rejects.toBeInstanceOf(UnixfsReadError);
    await expect(read(file, 0, -1)).rejects.toBeInstanceOf(UnixfsReadError);
  });
});
