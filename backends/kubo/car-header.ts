import * as dagCbor from "@ipld/dag-cbor";
import { varint } from "multiformats";
import { CID } from "multiformats/cid";
import { isRecord } from "./rpc.js";

/**
 * Collects a CARv1 header from the first chunks of a stream, to learn its roots: Kubo's
 * dag/import is told not to pin (it cannot name pins), so the roots are pinned afterwards.
 */
export function carHeaderReader() {
  const chunks: Uint8Array[] = [];
  let length = 0;
  let decoded: CID[] | undefined;
  return {
    push(chunk: Uint8Array) {
      if (decoded) return;
      chunks.push(chunk);
      length += chunk.byteLength;
      const bytes = Buffer.concat(chunks, length);
      if (bytes.byteLength < 1) return;
      let headerLength: number;
      let offset: number;
      try {
        [headerLength, offset] = varint.decode(bytes);
      } catch {
        return; // the varint is not complete yet
      }
      if (bytes.byteLength < offset + headerLength) return;
      const header: unknown = dagCbor.decode(bytes.subarray(offset, offset + headerLength));
      const roots = isRecord(header) && Array.isArray(header.roots) ? header.roots : [];
      decoded = roots.map((root) => CID.asCID(root)).filter((root): root is CID => root !== null);
      chunks.length = 0;
    },
    roots(): CID[] {
      return decoded ?? [];
    },
  };
}
