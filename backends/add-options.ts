/**
 * How a file becomes a UnixFS DAG, and the mapping from Kubo's `add` query parameters to it.
 * Every backend builds the same DAG from the same options, so a file gets the CID Kubo would
 * give it, whichever backend stores it.
 *
 * Defaults are Kubo's (and js-ipfs's, which the original Quasar used): CIDv0, dag-pb leaves,
 * fixed 256 KiB chunks, balanced layout with 174 links per node, sha2-256.
 */

/** How the bytes are cut into leaves. */
export type ChunkerOptions =
  | { kind: "size"; size: number }
  /** Kubo's rabin fingerprinting chunker, chunk sizes in bytes. */
  | { kind: "rabin"; min: number; avg: number; max: number };

/** The options of one UnixFS import. */
export type UnixfsAddOptions = {
  cidVersion: 0 | 1;
  rawLeaves: boolean;
  chunker: ChunkerOptions;
  /** Compute the CID without storing a block (Kubo's `only-hash`). Never pinned. */
  onlyHash: boolean;
};

/** Kubo's default chunk size (the unixfs-v0-2015 profile's). */
export const DEFAULT_CHUNK_SIZE = 262_144;
/** Kubo's limit on a chunker's sizes: a block must fit in 2 MiB with its envelope. */
export const MAX_CHUNK_SIZE = 2_096_896;
/** Kubo's rabin lower bound. */
const MIN_RABIN_SIZE = 16;

export const KUBO_ADD_DEFAULTS: UnixfsAddOptions = Object.freeze({
  cidVersion: 0,
  rawLeaves: false,
  chunker: Object.freeze({ kind: "size", size: DEFAULT_CHUNK_SIZE }),
  onlyHash: false,
});

/** The Kubo `add` flags that change the DAG, read from a query. */
export type KuboAddParams = {
  options: UnixfsAddOptions;
  /** Kubo's `wrap-with-directory`: the files are also wrapped in a directory named "". */
  wrapWithDirectory: boolean;
};

export type ParsedKuboAddParams =
  | { ok: true; value: KuboAddParams }
  | { ok: false; message: string };

/** The hashes an import can use. The UnixFS importer (helia) hashes with sha2-256 only. */
export const SUPPORTED_ADD_HASHES = ["sha2-256"] as const;

/**
 * Reads Kubo's `add` flags (`cid-version`, `raw-leaves`, `chunker`, `hash`, `only-hash`,
 * `wrap-with-directory`) the way Kubo does: `cid-version=1` implies raw leaves unless
 * `raw-leaves` is given; booleans accept Go's spellings. A value Quasar cannot honour is a
 * message, never a silently different CID.
 */
export function parseKuboAddParams(
  query: Readonly<Record<string, string | undefined>>,
): ParsedKuboAddParams {
  const fail = (message: string): ParsedKuboAddParams => ({ ok: false, message });

  let cidVersion: 0 | 1 = 0;
  const version = query["cid-version"];
  if (version !== undefined) {
    if (version !== "0" && version !== "1")
      return fail(`unknown CID version: ${version} (Kubo accepts 0 or 1)`);
    cidVersion = version === "1" ? 1 : 0;
  }

  const hash = query.hash;
  if (hash !== undefined && !(SUPPORTED_ADD_HASHES as readonly string[]).includes(hash)) {
    return fail(
      `hash function "${hash}" is not supported here: only ${SUPPORTED_ADD_HASHES.join(", ")} (Kubo's default)`,
    );
  }

  let rawLeaves = cidVersion === 1;
  if (query["raw-leaves"] !== undefined) {
    const parsed = parseBool(query["raw-leaves"]);
    if (parsed === undefined) return fail(`raw-leaves: not a boolean: "${query["raw-leaves"]}"`);
    rawLeaves = parsed;
  }

  let chunker: ChunkerOptions = KUBO_ADD_DEFAULTS.chunker;
  if (query.chunker !== undefined && query.chunker !== "") {
    const parsed = parseChunker(query.chunker);
    if (typeof parsed === "string") return fail(parsed);
    chunker = parsed;
  }

  const flags: Record<string, boolean> = {};
  for (const name of ["only-hash", "wrap-with-directory"] as const) {
    const raw = query[name];
    if (raw === undefined) {
      flags[name] = false;
      continue;
    }
    const parsed = parseBool(raw);
    if (parsed === undefined) return fail(`${name}: not a boolean: "${raw}"`);
    flags[name] = parsed;
  }

  return {
    ok: true,
    value: {
      options: { cidVersion, rawLeaves, chunker, onlyHash: flags["only-hash"] === true },
      wrapWithDirectory: flags["wrap-with-directory"] === true,
    },
  };
}

/**
 * Kubo's chunker syntax: `size-N`, `rabin`, `rabin-AVG`, `rabin-MIN-AVG-MAX`. Answers the
 * parsed chunker or Kubo's message for a bad one. (`buzhash` is Kubo's too, but no JavaScript
 * importer reproduces it: refused.)
 */
export function parseChunker(spec: string): ChunkerOptions | string {
  const parts = spec.split("-");
  const numbers = parts.slice(1).map((part) => (/^\d+$/.test(part) ? Number(part) : Number.NaN));
  if (parts[0] === "size") {
    if (parts.length !== 2 || !Number.isSafeInteger(numbers[0]))
      return `chunker "${spec}": expected size-<bytes>`;
    const size = numbers[0] as number;
    if (size <= 0) return "chunker size must be greater than 0";
    if (size > MAX_CHUNK_SIZE)
      return `chunker parameters may not exceed the maximum chunk size of ${MAX_CHUNK_SIZE}`;
    return { kind: "size", size };
  }
  if (parts[0] === "rabin") {
    if (numbers.some((n) => !Number.isSafeInteger(n)))
      return `chunker "${spec}": sizes must be whole numbers of bytes`;
    let min: number;
    let avg: number;
    let max: number;
    if (parts.length === 1 || parts.length === 2) {
      // Go's NewRabin(avg): min = avg/3, max = avg + avg/2, integer division.
      avg = parts.length === 2 ? (numbers[0] as number) : DEFAULT_CHUNK_SIZE;
      min = Math.floor(avg / 3);
      max = avg + Math.floor(avg / 2);
    } else if (parts.length === 4) {
      [min, avg, max] = numbers as [number, number, number];
      if (min >= avg) return "incorrect format: rabin-min must be smaller than rabin-avg";
      if (avg >= max) return "incorrect format: rabin-avg must be smaller than rabin-max";
    } else {
      return "incorrect format (expected 'rabin' 'rabin-[avg]' or 'rabin-[min]-[avg]-[max]'";
    }
    if (min < MIN_RABIN_SIZE) return "rabin min must be greater than 16";
    if (max > MAX_CHUNK_SIZE)
      return `chunker parameters may not exceed the maximum chunk size of ${MAX_CHUNK_SIZE}`;
    return { kind: "rabin", min, avg, max };
  }
  return `chunker "${spec}" is not supported here: use size-<bytes>, rabin, rabin-<avg> or rabin-<min>-<avg>-<max>`;
}

/** The chunker in Kubo's syntax. */
export function chunkerSpec(chunker: ChunkerOptions): string {
  return chunker.kind === "size"
    ? `size-${chunker.size}`
    : `rabin-${chunker.min}-${chunker.avg}-${chunker.max}`;
}

/** The same import as Kubo `add` query arguments (the Kubo backend forwards these). */
export function kuboAddArgs(options: UnixfsAddOptions): Record<string, string | number | boolean> {
  return {
    "cid-version": options.cidVersion,
    "raw-leaves": options.rawLeaves,
    chunker: chunkerSpec(options.chunker),
    hash: "sha2-256",
    "only-hash": options.onlyHash,
  };
}

/** Go's strconv.ParseBool, plus the bare flag (`?raw-leaves`) meaning true. */
function parseBool(value: string): boolean | undefined {
  if (["", "1", "t", "T", "true", "TRUE", "True"].includes(value)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(value)) return false;
  return undefined;
}
