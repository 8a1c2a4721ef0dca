import * as dagPb from "@ipld/dag-pb";
import { UnixFS } from "ipfs-unixfs";
import type { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";

/** Blocks loaded ahead of the reader at each level of the file's DAG. */
const READ_AHEAD = 8;

/**
 * Streams the bytes of a UnixFS file (dag-pb file nodes over raw or dag-pb leaves) from a
 * block loader, honouring `offset` and `length`, with bounded read-ahead.
 *
 * Written for the embedded backend because @helia/unixfs's `cat` (ipfs-unixfs-exporter 16)
 * pushes every block into an unbounded queue without waiting for the reader: a slow client
 * made the whole file sit in memory, and a reader that stopped early left the walk running.
 * Here a block is loaded only when the reader is at most READ_AHEAD blocks behind.
 */
export async function* readUnixfsFile(params: {
  root: CID;
  offset?: number;
  length?: number;
  load: (cid: CID) => Promise<Uint8Array>;
  signal?: AbortSignal;
}): AsyncGenerator<Uint8Array> {
  const { load, signal } = params;
  const rootBlock = await load(params.root);
  const rootNode = decodeNode(params.root, rootBlock);
  const size = nodeSize(rootNode);
  const offset = BigInt(params.offset ?? 0);
  if (offset < 0n) throw new UnixfsReadError("offset must not be negative");
  if (params.length !== undefined && params.length < 0)
    throw new UnixfsReadError("length must not be negative");
  const start = offset > size ? size : offset;
  const end = params.length === undefined ? size : min(size, start + BigInt(params.length));
  if (end <= start) return;

  async function* walk(node: FileNode, position: bigint): AsyncGenerator<Uint8Array> {
    if (node.kind === "raw") {
      yield* slice(node.bytes, position);
      return;
    }
    let cursor = position;
    if (node.data) {
      yield* slice(node.data, cursor);
      cursor += BigInt(node.data.byteLength);
    }
    // children overlapping [start, end), in order
    const wanted: { cid: CID; position: bigint }[] = [];
    for (const [index, link] of node.links.entries()) {
      const childSize = node.blockSizes[index] ?? 0n;
      if (cursor + childSize > start && cursor < end) wanted.push({ cid: link, position: cursor });
      cursor += childSize;
      if (cursor >= end) break;
    }
    const pending: Promise<Uint8Array>[] = [];
    const startLoad = (index: number) => {
      const child = wanted[index];
      if (!child) return;
      const loading = load(child.cid);
      loading.catch(() => undefined); // awaited below in order, or dropped when the read stops
      pending[index] = loading;
    };
    for (let index = 0; index < Math.min(READ_AHEAD, wanted.length); index++) startLoad(index);
    for (const [index, child] of wanted.entries()) {
      signal?.throwIfAborted();
      const block = await (pending[index] ?? load(child.cid));
      delete pending[index];
      startLoad(index + READ_AHEAD);
      yield* walk(decodeNode(child.cid, block), child.position);
    }
  }

  /** The part of `bytes` (which starts at stream position `at`) inside [start, end). */
  function* slice(bytes: Uint8Array, at: bigint): Generator<Uint8Array> {
    const from = start > at ? Number(start - at) : 0;
    const to = Number(min(BigInt(bytes.byteLength), end - at));
    if (to > from) yield bytes.subarray(from, to);
  }

  yield* walk(rootNode, 0n);
}

type FileNode =
  | { kind: "raw"; bytes: Uint8Array }
  | { kind: "file"; data: Uint8Array | undefined; links: CID[]; blockSizes: bigint[] };

function decodeNode(cid: CID, block: Uint8Array): FileNode {
  if (cid.code === raw.code) return { kind: "raw", bytes: block };
  if (cid.code !== dagPb.code)
    throw new UnixfsReadError(`${cid} is not a UnixFS file (codec 0x${cid.code.toString(16)})`);
  const node = dagPb.decode(block);
  if (!node.Data) throw new UnixfsReadError(`${cid} is not a UnixFS file (no data)`);
  const unixfs = UnixFS.unmarshal(node.Data);
  if (unixfs.type !== "file" && unixfs.type !== "raw") {
    throw new UnixfsReadError(`${cid} is a UnixFS ${unixfs.type}, not a file`);
  }
  if (node.Links.length !== unixfs.blockSizes.length) {
    throw new UnixfsReadError(`${cid} is a malformed UnixFS file: links and block sizes differ`);
  }
  return {
    kind: "file",
    data: unixfs.data,
    links: node.Links.map((link) => link.Hash),
    blockSizes: unixfs.blockSizes,
  };
}

function nodeSize(node: FileNode): bigint {
  if (node.kind === "raw") return BigInt(node.bytes.byteLength);
  return BigInt(node.data?.byteLength ?? 0) + node.blockSizes.reduce((sum, size) => sum + size, 0n);
}

function min(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

/** The CID is not a readable UnixFS file, or the range is invalid. */
export class UnixfsReadError extends Error {
  override name = "UnixfsReadError";
}
