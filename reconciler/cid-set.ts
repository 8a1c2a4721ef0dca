/**
 * A set of CID strings for a sweep's listing, in about a quarter of a JS Set's memory, laid
 * out so that looking up CIDs in sorted order touches memory in order.
 *
 * A Set<string> of a million CIDs costs about 280 bytes each here (a string object per CID
 * plus the Set's table): a 10M-pin backend would need 2.8 GB. This keeps each CID as a record
 * in a byte arena: two header bytes (its length, and a flag once deleted), then its
 * characters (a normalised CIDv1 is ASCII, ~59 bytes). Open-addressing tables hold each
 * record's offset beside its hash: ~80 bytes a CID in all.
 *
 * Why buckets: the diff adds the listing in the backend's order, then deletes the desired
 * CIDs in sorted order. In one big table each delete cost two random memory accesses (the
 * slot, then the record), and on this kind of virtual machine a random access into tens of
 * megabytes costs ~0.4 µs (TLB misses), not the comparison. So records go to one of 256
 * buckets by two characters near the front of the CID (for a normalised CIDv1 of a 32-byte
 * digest, the first two that depend on the digest): a sorted stream of CIDs visits one bucket
 * at a time, and a bucket (~4,000 CIDs a million) fits the cache. A bucket's table is built
 * only when a lookup first needs it, from its arena read in order, so adds are appends.
 * Which bucket a CID goes to matters only for speed, never for the answer: any strings at all
 * are kept and found exactly.
 *
 * Only what the diff needs: add (duplicates ignored), delete (says whether it was there),
 * and the entries left, in insertion order. Strings with a character beyond ASCII (never a
 * normalised CID, but a set must not lose them) live in a plain Map beside it.
 */
export class CompactCidSet {
  private readonly chunkBits: number;
  private readonly chunkBytes: number;
  private readonly buckets: Array<Bucket | undefined> = [];
  /** Each record's bucket, in insertion order: values() walks the buckets by it. */
  private order = new Uint8Array(1 << 12);
  /** Records ever added (duplicates not yet found and deleted ones included). */
  private records = 0;
  /** Live records; exact once every bucket's table is built (duplicates are found then). */
  private live = 0;
  /** Non-ASCII strings, in insertion order, each with the record count when it was added. */
  private readonly other = new Map<string, number>();

  /** `chunkBits`: log2 of an arena chunk's size (tests make it small to cross chunks). */
  constructor(options: { chunkBits?: number } = {}) {
    const chunkBits = options.chunkBits ?? 16;
    if (chunkBits < 8 || chunkBits > 30) throw new RangeError("chunkBits: 8 to 30");
    this.chunkBits = chunkBits;
    this.chunkBytes = 2 ** chunkBits;
  }

  get size(): number {
    this.settle();
    return this.live + this.other.size;
  }

  add(cid: string): void {
    if (cid.length > MAX_LENGTH) throw new RangeError("a CID longer than 32,767 characters");
    const index = bucketIndex(cid);
    let bucket = this.buckets[index];
    if (bucket === undefined) {
      bucket = new Bucket();
      this.buckets[index] = bucket;
    }
    // Before its table is built, a bucket takes duplicates (building the table drops them),
    // so an add is an append and needs no hash.
    let hash = 0;
    if (bucket.slots !== null) {
      hash = asciiHash(cid);
      if (hash >= 0 && this.find(bucket, cid, hash) >= 0) return;
    }
    const offset = this.append(bucket, cid);
    if (offset < 0) {
      if (!this.other.has(cid)) this.other.set(cid, this.records);
      return;
    }
    if (this.records === this.order.length) {
      const grown = new Uint8Array(this.order.length * 2);
      grown.set(this.order);
      this.order = grown;
    }
    this.order[this.records++] = index;
    this.live++;
    if (bucket.slots !== null) this.place(bucket, offset + 1, hash);
  }

  /** Removes `cid`; true when it was in the set. */
  delete(cid: string): boolean {
    const hash = asciiHash(cid);
    if (hash < 0) return this.other.delete(cid);
    const bucket = this.buckets[bucketIndex(cid)];
    if (bucket === undefined) return false;
    if (bucket.slots === null) this.build(bucket);
    const offset = this.find(bucket, cid, hash);
    if (offset < 0) return false;
    this.remove(bucket, offset);
    return true;
  }

  /**
   * delete() for a CID given as ASCII bytes, bytes[start, end): no string is made, which
   * makes a page of CIDs received as text several times cheaper to look up. The caller
   * vouches that the bytes are ASCII.
   */
  deleteAscii(bytes: Uint8Array, start: number, end: number): boolean {
    const length = end - start;
    if (length > MAX_LENGTH) return false;
    const bucket =
      this.buckets[
        length < 9 ? 0 : bucketOfCodes(bytes[start + 7] as number, bytes[start + 8] as number)
      ];
    if (bucket === undefined) return false;
    if (bucket.slots === null) this.build(bucket);
    const offset = this.findBytes(bucket, bytes, start, length, bytesHash(bytes, start, length));
    if (offset < 0) return false;
    this.remove(bucket, offset);
    return true;
  }

  /** Marks the record at `offset` deleted (its slot stays, as a tombstone). */
  private remove(bucket: Bucket, offset: number): void {
    const chunk = bucket.chunks[offset >>> this.chunkBits] as Uint8Array;
    const start = offset & (this.chunkBytes - 1);
    chunk[start + 1] = (chunk[start + 1] as number) | REMOVED_BIT;
    this.live--;
  }

  /** The CIDs still in the set, in the order they were first added. */
  *values(): IterableIterator<string> {
    this.settle();
    // One read position per bucket; the order array says which bucket holds the next record.
    const chunkAt = new Uint32Array(BUCKETS);
    const startAt = new Uint32Array(BUCKETS);
    // Merged by record count: the Map's order is insertion order, so its counts never fall.
    const others = this.other.entries();
    let other = others.next();
    for (let record = 0; record < this.records; record++) {
      for (; !other.done && other.value[1] <= record; other = others.next()) yield other.value[0];
      const index = this.order[record] as number;
      const bucket = this.buckets[index] as Bucket;
      let chunkIndex = chunkAt[index] as number;
      let start = startAt[index] as number;
      if (start === this.chunkEnd(bucket, chunkIndex)) {
        chunkIndex++;
        start = 0;
      }
      const chunk = bucket.chunks[chunkIndex] as Uint8Array;
      const header = (chunk[start] as number) | ((chunk[start + 1] as number) << 8);
      const length = header & MAX_LENGTH;
      if (length === header) yield latin1.decode(chunk.subarray(start + 2, start + 2 + length));
      chunkAt[index] = chunkIndex;
      startAt[index] = start + 2 + length;
    }
    for (; !other.done; other = others.next()) yield other.value[0];
  }

  /** Builds every bucket's table, so duplicates are found and `live` is exact. */
  private settle(): void {
    for (const bucket of this.buckets)
      if (bucket !== undefined && bucket.slots === null) this.build(bucket);
  }

  /** The arena offset of the live record spelling `cid` in a built bucket, or -1. */
  private find(bucket: Bucket, cid: string, hash: number): number {
    const slots = bucket.slots as Uint32Array;
    const mask = (slots.length >>> 1) - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[2 * slot] as number;
      if (held === 0) return -1;
      // A deleted record stays as a tombstone; its header never equals a live length.
      if (slots[2 * slot + 1] === hash && this.holds(bucket, held - 1, cid)) return held - 1;
    }
  }

  /**
   * The bucket's table, from its arena read in order. A record equal to an earlier live one
   * (the same CID listed twice) is deleted: the first one keeps its place in the order.
   */
  private build(bucket: Bucket): void {
    let size = 16;
    while (size * 3 < bucket.records * 4) size *= 2;
    bucket.slots = new Uint32Array(2 * size);
    for (let chunkIndex = 0; chunkIndex < bucket.chunks.length; chunkIndex++) {
      const chunk = bucket.chunks[chunkIndex] as Uint8Array;
      const end = this.chunkEnd(bucket, chunkIndex);
      for (let start = 0; start < end; ) {
        const header = (chunk[start] as number) | ((chunk[start + 1] as number) << 8);
        const length = header & MAX_LENGTH;
        const offset = chunkIndex * this.chunkBytes + start;
        if (length === header) {
          const hash = bytesHash(chunk, start + 2, length);
          if (this.findBytes(bucket, chunk, start + 2, length, hash) >= 0) {
            chunk[start + 1] = (chunk[start + 1] as number) | REMOVED_BIT;
            this.live--;
          } else {
            this.place(bucket, offset + 1, hash);
          }
        }
        start += 2 + length;
      }
    }
  }

  /**
   * The arena offset of the live record in a built bucket that holds bytes[start, start +
   * length), or -1.
   */
  private findBytes(
    bucket: Bucket,
    bytes: Uint8Array,
    start: number,
    length: number,
    hash: number,
  ): number {
    const slots = bucket.slots as Uint32Array;
    const mask = (slots.length >>> 1) - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[2 * slot] as number;
      if (held === 0) return -1;
      if (slots[2 * slot + 1] !== hash) continue;
      const chunk = bucket.chunks[(held - 1) >>> this.chunkBits] as Uint8Array;
      const at = (held - 1) & (this.chunkBytes - 1);
      // A deleted record's header carries REMOVED_BIT, so it never equals a live length.
      if (((chunk[at] as number) | ((chunk[at + 1] as number) << 8)) !== length) continue;
      let i = 0;
      while (i < length && chunk[at + 2 + i] === bytes[start + i]) i++;
      if (i === length) return held - 1;
    }
  }

  /** Whether the live record at `offset` spells `cid`. */
  private holds(bucket: Bucket, offset: number, cid: string): boolean {
    const chunk = bucket.chunks[offset >>> this.chunkBits] as Uint8Array;
    const start = offset & (this.chunkBytes - 1);
    // A deleted record's header carries REMOVED_BIT, so it never equals a live length.
    if (((chunk[start] as number) | ((chunk[start + 1] as number) << 8)) !== cid.length)
      return false;
    for (let i = 0; i < cid.length; i++) {
      if (chunk[start + 2 + i] !== cid.charCodeAt(i)) return false;
    }
    return true;
  }

  /**
   * Writes a record for `cid` at the end of the bucket's arena; returns its offset, or -1
   * (nothing kept) when a character is beyond ASCII.
   */
  private append(bucket: Bucket, cid: string): number {
    const bytes = 2 + cid.length;
    if (bytes > this.chunkBytes) throw new RangeError("a CID longer than a chunk");
    if (bucket.chunks.length === 0 || bucket.used + bytes > this.chunkBytes) {
      if (bucket.chunks.length > 0) bucket.ends.push(bucket.used);
      bucket.chunks.push(new Uint8Array(this.chunkBytes));
      bucket.used = 0;
    }
    const offset = (bucket.chunks.length - 1) * this.chunkBytes + bucket.used;
    // Offsets are stored + 1 in 32 bits.
    if (offset >= 0xffff_ffff) throw new RangeError("more than 4 GiB of CIDs in one bucket");
    const chunk = bucket.chunks[bucket.chunks.length - 1] as Uint8Array;
    const start = bucket.used;
    let wide = 0;
    for (let i = 0; i < cid.length; i++) {
      const code = cid.charCodeAt(i);
      wide |= code;
      chunk[start + 2 + i] = code;
    }
    // The characters are written first and kept only when all are ASCII: one pass for both.
    if (wide > 0x7f) return -1;
    chunk[start] = cid.length & 0xff;
    chunk[start + 1] = cid.length >>> 8;
    bucket.used += bytes;
    bucket.records++;
    return offset;
  }

  /** Bytes used in one of a bucket's chunks. */
  private chunkEnd(bucket: Bucket, chunkIndex: number): number {
    return chunkIndex === bucket.chunks.length - 1
      ? bucket.used
      : (bucket.ends[chunkIndex] as number);
  }

  /** Puts a record (offset + 1) with its hash in the table, growing it first when full. */
  private place(bucket: Bucket, held: number, hash: number): void {
    let slots = bucket.slots as Uint32Array;
    // Load factor at most 3/4: linear probing stays short, and the table costs ~14 bytes a CID.
    if ((bucket.placed + 1) * 4 > (slots.length >>> 1) * 3) {
      slots = this.rehash(bucket);
    }
    putInSlot(slots, held, hash);
    bucket.placed++;
  }

  /** Doubles a bucket's table, moving each slot by its stored hash: no record is read. */
  private rehash(bucket: Bucket): Uint32Array {
    const old = bucket.slots as Uint32Array;
    const slots = new Uint32Array(old.length * 2);
    for (let i = 0; i < old.length; i += 2) {
      const held = old[i] as number;
      if (held !== 0) putInSlot(slots, held, old[i + 1] as number);
    }
    bucket.slots = slots;
    return slots;
  }
}

/** Writes (held, hash) into the first free slot from the hash's own (linear probing). */
function putInSlot(slots: Uint32Array, held: number, hash: number): void {
  const mask = (slots.length >>> 1) - 1;
  let slot = hash & mask;
  while (slots[2 * slot] !== 0) slot = (slot + 1) & mask;
  slots[2 * slot] = held;
  slots[2 * slot + 1] = hash;
}

/** One bucket: its arena (chunks of the set's chunk size) and, once needed, its table. */
class Bucket {
  readonly chunks: Uint8Array[] = [];
  /** Bytes used in each chunk but the last (whose use is `used`). */
  readonly ends: number[] = [];
  used = 0;
  /** Records in the arena, duplicates and deleted ones included. */
  records = 0;
  /**
   * Two numbers per slot: the record's arena offset + 1 (0 is empty), and its hash. A probe
   * reads a record only when the hashes match. Null until a lookup needs it.
   */
  slots: Uint32Array | null = null;
  /** Slots in use (deleted records keep theirs as tombstones). */
  placed = 0;
}

const BUCKETS = 256;

/**
 * A CID's bucket, from its characters 7 and 8. A normalised CIDv1 of a 32-byte digest
 * (`bafkrei…`, `bafybei…`) spells its 4-byte prefix in characters 0 to 6 and part of 7; the
 * digest's first bits then give 8 × 32 values. A sorted stream keeps those two characters
 * for thousands of CIDs at a time, so it stays in one bucket.
 */
function bucketIndex(cid: string): number {
  return cid.length < 9 ? 0 : bucketOfCodes(cid.charCodeAt(7), cid.charCodeAt(8));
}

function bucketOfCodes(seventh: number, eighth: number): number {
  return ((base32Symbol(seventh) & 7) << 5) | base32Symbol(eighth);
}

/** RFC 4648 base32 (lower case) symbol value, or some value under 32 for other characters. */
function base32Symbol(code: number): number {
  if (code >= 97 && code <= 122) return code - 97;
  if (code >= 50 && code <= 55) return code - 24;
  return code & 31;
}

const latin1 = new TextDecoder("latin1");
/** A record's length fits 15 bits; the header's top bit says it was deleted. */
const MAX_LENGTH = 0x7fff;
const REMOVED_BIT = 0x80;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * A hash of the characters as an unsigned 32-bit number, or -1 when a character is beyond
 * ASCII (such strings are kept in the Map): one pass for both questions. FNV-1a over four
 * characters at a time (a quarter of the multiplications in a row), then a finaliser that
 * brings the high bits down, since the table's index is the low bits.
 */
function asciiHash(text: string): number {
  let hash = FNV_OFFSET;
  let wide = 0;
  const length = text.length;
  let i = 0;
  for (; i + 4 <= length; i += 4) {
    const a = text.charCodeAt(i);
    const b = text.charCodeAt(i + 1);
    const c = text.charCodeAt(i + 2);
    const d = text.charCodeAt(i + 3);
    wide |= a | b | c | d;
    hash = Math.imul(hash ^ (a | (b << 8) | (c << 16) | (d << 24)), FNV_PRIME);
  }
  for (; i < length; i++) {
    const code = text.charCodeAt(i);
    wide |= code;
    hash = Math.imul(hash ^ code, FNV_PRIME);
  }
  return wide > 0x7f ? -1 : finish(hash, length);
}

/** asciiHash of a record's bytes (ASCII bytes are their characters' codes). */
function bytesHash(bytes: Uint8Array, start: number, length: number): number {
  let hash = FNV_OFFSET;
  const end = start + length;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    const word =
      (bytes[i] as number) |
      ((bytes[i + 1] as number) << 8) |
      ((bytes[i + 2] as number) << 16) |
      ((bytes[i + 3] as number) << 24);
    hash = Math.imul(hash ^ word, FNV_PRIME);
  }
  for (; i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), FNV_PRIME);
  return finish(hash, length);
}

/** Murmur3's finaliser, with the length mixed in. */
function finish(state: number, length: number): number {
  let hash = state ^ length;
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  return hash >>> 0;
}
