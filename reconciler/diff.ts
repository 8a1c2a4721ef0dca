import { CompactCidSet } from "./cid-set.js";

/**
 * The full-sweep diff: which desired CIDs a backend lacks, and which of its pins are not
 * desired. Pure over two async iterables, e.g. a streamed `pin ls` and the store's streamed
 * desired set; each may yield single CIDs, arrays of them or texts of them (pages cost one
 * await, not one per CID, which matters at a million CIDs; a text page is looked up as bytes,
 * with no string made per CID).
 *
 * Memory: the listing is held (reconciler/cid-set.ts: ~80 bytes a CID, where a Set of
 * strings took ~280) and matched desired CIDs are marked off it; the desired side is
 * streamed through, with a bounded read-ahead while the listing arrives. The listing is
 * complete before any match, so a CID listed twice (v0 and v1 spellings of one pin) is never
 * reported as not desired. Both sides must carry normalised CIDs (CIDv1 base32,
 * `normalizeCid`), or equal content will not match.
 */
export type PinDiff = {
  /** Desired but absent from the listing, in the desired stream's order. */
  toPin: string[];
  /**
   * Listed but not desired, in listing order. Candidates only: the caller must still keep
   * to pins Quasar itself created (ledger and pin name) before unpinning any of them.
   */
  toUnpin: string[];
};

/**
 * A page of CIDs as one text, one CID a line (how the store's desired pages arrive). The
 * diff reads it as bytes and makes a string only for a CID it reports.
 */
export type CidLines = { readonly text: string; readonly count: number };

/** CIDs one at a time, or in pages (arrays or texts). */
export type CidStream = AsyncIterable<string | readonly string[] | CidLines>;

export type DiffPinsOptions = {
  signal?: AbortSignal;
  /**
   * Desired CIDs read ahead while the listing is still arriving (default 500,000, ~50 MB),
   * so the database and the backend work at the same time. 0 reads the sides one by one.
   */
  prefetch?: number;
};

const DEFAULT_PREFETCH = 500_000;

export async function diffPins(
  desired: CidStream,
  listing: CidStream,
  options: DiffPinsOptions = {},
): Promise<PinDiff> {
  const { signal } = options;
  const limit = options.prefetch ?? DEFAULT_PREFETCH;
  signal?.throwIfAborted();
  const iterator = desired[Symbol.asyncIterator]();
  // Read ahead on the desired side until `limit` CIDs wait or the listing is complete.
  const ahead: Array<string | readonly string[] | CidLines> = [];
  let aheadCount = 0;
  let listingDone = false;
  let desiredDone = false;
  const readAhead = (async () => {
    while (!listingDone && aheadCount < limit) {
      const next = await iterator.next();
      if (next.done) {
        desiredDone = true;
        return;
      }
      ahead.push(next.value);
      aheadCount += itemCount(next.value);
    }
  })();
  // Insertion order is kept, so toUnpin comes out in listing order.
  const listed = new CompactCidSet();
  let seen = 0;
  try {
    for await (const item of listing) {
      if (typeof item === "string") listed.add(item);
      else if (isLines(item)) for (const cid of item.text.split("\n")) listed.add(cid);
      else for (const cid of item) listed.add(cid);
      if (++seen % 4_096 === 0) signal?.throwIfAborted();
    }
  } finally {
    listingDone = true;
    await readAhead;
  }
  signal?.throwIfAborted();
  const toPin: string[] = [];
  const bytes = new PageBytes();
  const match = (item: string | readonly string[] | CidLines): void => {
    if (typeof item === "string") {
      if (!listed.delete(item)) toPin.push(detach(item));
    } else if (isLines(item)) {
      const page = bytes.ascii(item.text);
      // A page with a character beyond ASCII (never a normalised CID) goes as strings.
      if (page === null) {
        match(item.text.split("\n"));
        return;
      }
      for (let start = 0; start <= page.length; ) {
        let end = page.indexOf(NEWLINE, start);
        if (end < 0) end = page.length;
        if (!listed.deleteAscii(page, start, end))
          toPin.push(latin1.decode(page.subarray(start, end)));
        start = end + 1;
      }
    } else {
      for (const cid of item) if (!listed.delete(cid)) toPin.push(detach(cid));
    }
  };
  for (const item of ahead) match(item);
  ahead.length = 0;
  seen = 0;
  while (!desiredDone) {
    const next = await iterator.next();
    if (next.done) break;
    match(next.value);
    if (++seen % 4_096 === 0) signal?.throwIfAborted();
  }
  signal?.throwIfAborted();
  return { toPin, toUnpin: [...listed.values()] };
}

function isLines(item: readonly string[] | CidLines): item is CidLines {
  return !Array.isArray(item);
}

function itemCount(item: string | readonly string[] | CidLines): number {
  if (typeof item === "string") return 1;
  return isLines(item) ? item.count : item.length;
}

const NEWLINE = 0x0a;
const latin1 = new TextDecoder("latin1");

/** One reused buffer that pages of text are encoded into. */
class PageBytes {
  private buffer = new Uint8Array(1 << 20);
  private readonly encoder = new TextEncoder();

  /** The text's bytes (valid until the next call), or null when it is not all ASCII. */
  ascii(text: string): Uint8Array | null {
    // UTF-8 needs at least one byte a character, and exactly one only for ASCII.
    if (this.buffer.length < text.length) this.buffer = new Uint8Array(text.length * 2);
    const { read, written } = this.encoder.encodeInto(text, this.buffer);
    return read === text.length && written === text.length
      ? this.buffer.subarray(0, written)
      : null;
  }
}

/**
 * A copy of `cid` that shares no memory with the string it was cut from. The store's desired
 * pages arrive as one text per 20,000 CIDs, split into slices of it; keeping one slice keeps
 * the whole page. At 10M desired CIDs with one missing in 5,000, toPin kept every page:
 * 600 MB of live heap for 2,000 CIDs.
 */
function detach(cid: string): string {
  // Concatenation then slice makes V8 flatten into a new string of the CID's own length.
  return ` ${cid}`.slice(1);
}
