import { CID } from "multiformats/cid";

/**
 * What the IPLD data model (dag-json, dag-cbor) cannot hold, found before a value is stored.
 * JavaScript parses `1e400` as Infinity and keeps a lone surrogate such as "\ud800" in a
 * string; encoders then write null or U+FFFD, or fail deep inside a backend. Either way the
 * client would get a CID for a value it did not send. Kubo refuses such input; so do we,
 * naming where the bad value sits.
 */
export type UnrepresentableValue = {
  /** JSON Pointer (RFC 6901) to the value, "" for the root: "/a", "/list/0". */
  path: string;
  problem: string;
};

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The first value the data model cannot represent, depth first; undefined when all is well. */
export function findUnrepresentable(value: unknown): UnrepresentableValue | undefined {
  return walk(value, "", 0);
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** Deeper than any real document; stops a hostile one from exhausting the stack. */
const MAX_DEPTH = 1_000;

function walk(value: unknown, path: string, depth: number): UnrepresentableValue | undefined {
  if (depth > MAX_DEPTH) return { path, problem: `nested deeper than ${MAX_DEPTH} levels` };
  switch (typeof value) {
    case "number":
      return Number.isFinite(value)
        ? undefined
        : { path, problem: `${value} is not a number the data model can hold` };
    case "string":
      return LONE_SURROGATE.test(value)
        ? { path, problem: "the string holds a lone UTF-16 surrogate (not valid Unicode)" }
        : undefined;
    case "boolean":
      return undefined;
    case "bigint":
      // Integers beyond 2^53 (decoded as bigint) are fine within Kubo's int64.
      return value >= INT64_MIN && value <= INT64_MAX
        ? undefined
        : { path, problem: `${value} is outside the 64-bit integer range the data model holds` };
    case "object": {
      if (value === null || value instanceof Uint8Array || CID.asCID(value)) return undefined;
      if (Array.isArray(value)) {
        for (const [index, item] of value.entries()) {
          const found = walk(item, `${path}/${index}`, depth + 1);
          if (found) return found;
        }
        return undefined;
      }
      for (const [key, item] of Object.entries(value)) {
        const at = `${path}/${key.replaceAll("~", "~0").replaceAll("/", "~1")}`;
        if (LONE_SURROGATE.test(key)) {
          return { path: at, problem: "the key holds a lone UTF-16 surrogate (not valid Unicode)" };
        }
        const found = walk(item, at, depth + 1);
        if (found) return found;
      }
      return undefined;
    }
    default:
      return { path, problem: `a ${typeof value} is not part of the data model` };
  }
}
