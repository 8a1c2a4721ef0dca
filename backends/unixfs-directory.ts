import * as dagPb from "@ipld/dag-pb";
import { UnixFS } from "ipfs-unixfs";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";

/** One entry of a UnixFS directory: a name and the DAG it links to. */
export type DirectoryLink = { name: string; cid: CID; dagSize: number };

/** An encoded directory node, ready to store. */
export type EncodedDirectory = { cid: CID; bytes: Uint8Array; dagSize: number };

/**
 * Kubo's directory-sharding threshold (Import.UnixFSHAMTDirectorySizeThreshold, 256 KiB,
 * estimated as the sum of each link's name and CID bytes). Above it Kubo builds a HAMT.
 */
export const HAMT_THRESHOLD_BYTES = 262_144;

/**
 * A basic UnixFS directory as Kubo builds it: dag-pb, links sorted by name, each link's Tsize
 * the child's cumulative size, no mode or mtime. CIDv0 unless `cidVersion` is 1. Answers
 * undefined when Kubo would shard the directory (a HAMT, which this encoder does not build).
 */
export async function encodeDirectory(
  links: readonly DirectoryLink[],
  cidVersion: 0 | 1,
): Promise<EncodedDirectory | undefined> {
  let estimate = 0;
  for (const link of links)
    estimate += new TextEncoder().encode(link.name).length + link.cid.bytes.length;
  if (estimate >= HAMT_THRESHOLD_BYTES) return undefined;
  const node = dagPb.prepare({
    Data: new UnixFS({ type: "directory" }).marshal(),
    Links: links.map((link) => ({ Name: link.name, Hash: link.cid, Tsize: link.dagSize })),
  });
  const bytes = dagPb.encode(node);
  const digest = await sha256.digest(bytes);
  const cid = cidVersion === 0 ? CID.createV0(digest) : CID.createV1(dagPb.code, digest);
  const dagSize = links.reduce((total, link) => total + link.dagSize, bytes.byteLength);
  return { cid, bytes, dagSize };
}
