/**
 * A set of CID strings for a sweep's listing, in about a quarter of a JS Set's memory.
 *
 * A Set<string> of a million CIDs costs about 280 bytes each here (a string object per CID
 * plus the Set's table): a 10M-pin backend would need 2.8 GB. This keeps each CID as a record
 * in a byte arena of 16 MiB chunks: two header bytes (its length, and a flag once deleted),
 * then its characters (a normalised CIDv1 is ASCII, ~59 bytes). An open-addressing table
 * holds each record's offset beside its hash: ~72 bytes a CID in all.
 *
 * Why this shape: the desired side arrives sorted, so its lookups land at random places in
 * the table and the arena, and each cache miss costs more than the comparison. A lookup
 * compares hashes in the table (one miss) and then reads one record (one more); the arena's
 * order is the insertion order, so no other array is needed.
 *
 * Only what the diff needs: add (duplicates ignored), delete (says whether it was there),
 * and the entries left, in insertion order. Strings with a character beyond ASCII (never a
 * normalised CID, but a set must not lose them) live in a plain Map beside it.
 */
export class CompactCidSet {
  /** Arena chunks: a record never spans two, and the arena grows without copying. */
  private readonly chunks: Uint8Array[] = [];
  /** Bytes used in each chunk but the last (whose use is `chunkUsed`). */
  private readonly chunkEnds: number[] = [];
  private readonly chunkBits: number;
  private readonly chunkBytes: number;
  private chunkUsed: number;
  /** Records ever added, deleted ones included (their slots stay as tombstones). */
  private count = 0;
  private live = 0;
  /**
   * Two numbers per slot: the record's arena offset + 1 (0 is empty), and its hash. A probe
   * reads a record only when the hashes match.
   */
  private slots = new Uint32Array(2 << 15);
  /** Non-ASCII strings, in insertion order, each with the record count when it was added. */
  private readonly other = new Map<string, number>();

  /** `chunkBits`: log2 of a chunk's size (tests make it small to cross chunks). */
  constructor(options: { chunkBits?: number } = {}) {
    const chunkBits = options.chunkBits ?? 24;
    if (chunkBits < 8 || chunkBits > 30) throw new RangeError("chunkBits: 8 to 30");
    this.chunkBits = chunkBits;
    this.chunkBytes = 2 ** chunkBits;
    this.chunkUsed = this.chunkBytes;
  }

  get size(): number {
    return this.live + this.other.size;
  }

  add(cid: string): void {
    const hash = asciiHash(cid);
    if (hash < 0) {
      if (!this.other.has(cid)) this.other.set(cid, this.count);
      return;
    }
    if (cid.length > MAX_LENGTH) throw new RangeError("a CID longer than 32,767 characters");
    const slots = this.slots;
    const mask = (slots.length >>> 1) - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[2 * slot] as number;
      if (held === 0) break;
      // Listed twice (two spellings of one CID normalise to one): one record. A deleted
      // record stays as a tombstone: added again, the CID goes to the end, as in a Set.
      if (slots[2 * slot + 1] === hash && this.holds(held - 1, cid)) return;
    }
    this.place(this.append(cid) + 1, hash);
    this.count++;
    this.live++;
    // Load factor at most 3/4: linear probing stays short, and the table costs ~11 bytes a CID.
    if (this.count * 4 > (slots.length >>> 1) * 3) this.rehash();
  }

  /** Removes `cid`; true when it was in the set. */
  delete(cid: string): boolean {
    const hash = asciiHash(cid);
    if (hash < 0) return this.other.delete(cid);
    const slots = this.slots;
    const mask = (slots.length >>> 1) - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[2 * slot] as number;
      if (held === 0) return false;
      if (slots[2 * slot + 1] === hash && this.holds(held - 1, cid)) {
        const offset = held - 1;
        const chunk = this.chunks[offset >>> this.chunkBits] as Uint8Array;
        const start = offset & (this.chunkBytes - 1);
        chunk[start + 1] = (chunk[start + 1] as number) | REMOVED_BIT;
        this.live--;
        return true;
      }
    }
  }

  /** The CIDs still in the set, in the order they were first added. */
  *values(): IterableIterator<string> {
    // Merged by record count: the Map's order is insertion order, so its counts never fall.
    const others = this.other.entries();
    let other = others.next();
    let record = 0;
    for (let index = 0; index < this.chunks.length; index++) {
      const chunk = this.chunks[index] as Uint8Array;
      const end = index === this.chunks.length - 1 ? this.chunkUsed : this.chunkEnds[index];
      for (let start = 0; start < (end as number); record++) {
        for (; !other.done && other.value[1] <= record; other = others.next()) yield other.value[0];
        const header = (chunk[start] as number) | ((chunk[start + 1] as number) << 8);
        const length = header & MAX_LENGTH;
        if (length === header) yield latin1.decode(chunk.subarray(start + 2, start + 2 + length));
        start += 2 + length;
      }
    }
    for (; !other.done; other = others.next()) yield other.value[0];
  }

  /** Whether the live record at `offset` spells `cid`. */
  private holds(offset: number, cid: string): boolean {
    const chunk = this.chunks[offset >>> this.chunkBits] as Uint8Array;
    const start = offset & (this.chunkBytes - 1);
    // A deleted record's header carries REMOVED_BIT, so it never equals a live length.
    if (((chunk[start] as number) | ((chunk[start + 1] as number) << 8)) !== cid.length)
      return false;
    for (let i = 0; i < cid.length; i++) {
      if (chunk[start + 2 + i] !== cid.charCodeAt(i)) return false;
    }
    return true;
  }

  /** Writes a record for `cid` at the arena's end; returns its offset. */
  private append(cid: string): number {
    const bytes = 2 + cid.length;
    if (bytes > this.chunkBytes) throw new RangeError("a CID longer than a chunk");
    if (this.chunkUsed + bytes > this.chunkBytes) {
      if (this.chunks.length > 0) this.chunkEnds.push(this.chunkUsed);
      this.chunks.push(new Uint8Array(this.chunkBytes));
      this.chunkUsed = 0;
    }
    const offset = (this.chunks.length - 1) * this.chunkBytes + this.chunkUsed;
    // Offsets are stored + 1 in 32 bits.
    if (offset >= 0xffff_ffff) throw new RangeError("more than 4 GiB of CIDs in one set");
    const chunk = this.chunks[this.chunks.length - 1] as Uint8Array;
    const start = this.chunkUsed;
    chunk[start] = cid.length & 0xff;
    chunk[start + 1] = cid.length >>> 8;
    for (let i = 0; i < cid.length; i++) chunk[start + 2 + i] = cid.charCodeAt(i);
    this.chunkUsed += bytes;
    return offset;
  }

  /** Puts a record (offset + 1) with its hash in the first free slot from its hash. */
  private place(held: number, hash: number): void {
    const slots = this.slots;
    const mask = (slots.length >>> 1) - 1;
    let slot = hash & mask;
    while (slots[2 * slot] !== 0) slot = (slot + 1) & mask;
    slots[2 * slot] = held;
    slots[2 * slot + 1] = hash;
  }

  /** Doubles the table, moving each slot by its stored hash: no record is read. */
  private rehash(): void {
    const old = this.slots;
    this.slots = new Uint32Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) {
      const held = old[i] as number;
      if (held !== 0) this.place(held, old[i + 1] as number);
    }
  }
}

const latin1 = new TextDecoder("latin1");
/** A record's length fits 15 bits; the header's top bit says it was deleted. */
const MAX_LENGTH = 0x7fff;
const REMOVED_BIT = 0x80;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * FNV-1a over the characters as an unsigned 32-bit number, or -1 when a character is beyond
 * ASCII (such strings are kept in the Map): one pass for both questions.
 */
function asciiHash(text: string): number {
  let hash = FNV_OFFSET;
  let wide = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    wide |= code;
    hash = Math.imul(hash ^ code, FNV_PRIME);
  }
  return wide > 0x7f ? -1 : hash >>> 0;
}
