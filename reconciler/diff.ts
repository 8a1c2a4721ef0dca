import { CompactCidSet } from "./cid-set.js";

/**
 * The full-sweep diff: which desired CIDs a backend lacks, and which of its pins are not
 * desired. Pure over two async iterables, e.g. a streamed `pin ls` and the store's streamed
 * desired set; each may yield single CIDs or arrays of them (pages cost one await, not one
 * per CID, which matters at a million CIDs).
 *
 * Memory: the listing is held (reconciler/cid-set.ts: ~72 bytes a CID, where a Set of
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

/** CIDs one at a time, or in pages. */
export type CidStream = AsyncIterable<string | readonly string[]>;

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
  const ahead: Array<string | readonly string[]> = [];
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
      aheadCount += typeof next.value === "string" ? 1 : next.value.length;
    }
  })();
  // Insertion order is kept, so toUnpin comes out in listing order.
  const listed = new CompactCidSet();
  let seen = 0;
  try {
    for await (const item of listing) {
      if (typeof item === "string") listed.add(item);
      else for (const cid of item) listed.add(cid);
      if (++seen % 4_096 === 0) signal?.throwIfAborted();
    }
  } finally {
    listingDone = true;
    await readAhead;
  }
  signal?.throwIfAborted();
  const toPin: string[] = [];
  const match = (item: string | readonly string[]) => {
    if (typeof item === "string") {
      if (!listed.delete(item)) toPin.push(detach(item));
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
