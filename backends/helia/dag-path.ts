import * as dagPb from "@ipld/dag-pb";
import { CID } from "multiformats/cid";

/**
 * Walks `path` ("/a/0/b") inside decoded IPLD values, following links (CIDs) into other
 * blocks through `load`, the way Kubo's `dag get CID/path` does. Used by backends that
 * resolve paths themselves (helia); Kubo resolves them server-side.
 *
 * Kubo's rules, checked against Kubo 0.43 by test/kubo-compat.test.ts:
 *   - a dag-pb node is walked as UnixFS is: a segment names a link (`dir/file.txt`), and its
 *     `Data`/`Links` fields are not addressable;
 *   - a path ending on a link answers the linked node, not the link;
 *   - a missing key or index fails with Kubo's message (`key not found: "x"`).
 */
export async function resolveDagPath(params: {
  root: CID;
  path: string | undefined;
  load: (cid: CID) => Promise<unknown>;
}): Promise<{ value: unknown; remainderPath: string }> {
  const segments = (params.path ?? "").split("/").filter((segment) => segment.length > 0);
  let value = await params.load(params.root);
  // The CID whose block `value` is the root of (undefined once inside a block).
  let block: CID | undefined = params.root;
  for (const [index, segment] of segments.entries()) {
    const link = CID.asCID(value);
    if (link) {
      value = await params.load(link);
      block = link;
    }
    const next =
      block?.code === dagPb.code ? stepByName(block, value, segment) : step(value, segment);
    value = next;
    block = undefined;
    // Like `dag get`, a path ending on a link answers the linked node, not the link.
    const end = CID.asCID(value);
    if (end && index === segments.length - 1) value = await params.load(end);
  }
  return { value, remainderPath: "" };
}

/** A UnixFS step: the first link of a dag-pb node with that name. */
function stepByName(block: CID, node: unknown, name: string): unknown {
  const links = (node as dagPb.PBNode).Links ?? [];
  const found = links.find((link) => link.Name === name);
  if (!found) throw new DagPathError(`no link named "${name}" under ${block.toString()}`);
  return found.Hash;
}

function step(value: unknown, segment: string): unknown {
  if (Array.isArray(value)) {
    if (!/^-?\d+$/.test(segment)) {
      throw new DagPathError(
        `invalid segment for lookup on a list: "${segment}": strconv.ParseInt: parsing "${segment}": invalid syntax`,
      );
    }
    const index = Number(segment);
    if (index < 0 || index >= value.length) throw new DagPathError(keyNotFound(segment));
    return value[index];
  }
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    if (!Object.hasOwn(value, segment)) throw new DagPathError(keyNotFound(segment));
    return (value as Record<string, unknown>)[segment];
  }
  throw new DagPathError(
    `func called on wrong kind: "LookupBySegment" called on a ${kindOf(value)} node (kind: ${kindOf(value)}), but only makes sense on map or list`,
  );
}

function keyNotFound(segment: string): string {
  return `key not found: "${segment}"`;
}

/** The IPLD data model kind, as go-ipld-prime names it in its errors. */
function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (value instanceof Uint8Array) return "bytes";
  if (typeof value === "string") return "string";
  if (typeof value === "boolean") return "bool";
  if (typeof value === "bigint") return "int";
  if (typeof value === "number") return Number.isInteger(value) ? "int" : "float";
  return "unknown";
}

/** The path does not exist inside the DAG (the message is Kubo's for the same path). */
export class DagPathError extends Error {
  override name = "DagPathError";
}
