import { CID } from "multiformats/cid";

/**
 * Walks `path` ("/a/0/b") inside decoded IPLD values, following links (CIDs) into other
 * blocks through `load`, the way Kubo's `dag get CID/path` does. Used by backends that
 * resolve paths themselves (helia); Kubo resolves them server-side.
 */
export async function resolveDagPath(params: {
  root: CID;
  path: string | undefined;
  load: (cid: CID) => Promise<unknown>;
}): Promise<{ value: unknown; remainderPath: string }> {
  const segments = (params.path ?? "").split("/").filter((segment) => segment.length > 0);
  let value = await params.load(params.root);
  for (const [index, segment] of segments.entries()) {
    let link = CID.asCID(value);
    if (link) value = await params.load(link);
    const next = step(value, segment);
    if (next === undefined) {
      throw new DagPathError(params.root.toString(), segments.slice(0, index + 1).join("/"));
    }
    value = next.value;
    link = CID.asCID(value);
    // Like `dag get`, a path ending on a link answers the linked node, not the link.
    if (link && index === segments.length - 1) value = await params.load(link);
  }
  return { value, remainderPath: "" };
}

function step(value: unknown, segment: string): { value: unknown } | undefined {
  if (Array.isArray(value)) {
    if (!/^\d+$/.test(segment)) return undefined;
    const index = Number(segment);
    return index < value.length ? { value: value[index] } : undefined;
  }
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    return Object.hasOwn(value, segment)
      ? { value: (value as Record<string, unknown>)[segment] }
      : undefined;
  }
  return undefined;
}

/** The path does not exist inside the DAG. */
export class DagPathError extends Error {
  override name = "DagPathError";
  constructor(
    readonly root: string,
    readonly path: string,
  ) {
    super(`no link named "${path}" under ${root}`);
  }
}
