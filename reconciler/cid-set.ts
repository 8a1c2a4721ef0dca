/**
 * A set of CID strings for a sweep's listing, in about a quarter of a JS Set's memory.
 *
 * A Set<string> of a million CIDs costs about 280 bytes each here (a string object per CID
 * plus the Set's table): a 10M-pin backend would need 2.8 GB. This keeps each CID's
 * characters in a byte arena of 16 MiB chunks (a normalised CIDv1 is ASCII, ~59 bytes), an
 * offset and a length per entry, and an open-addressing table of entry numbers: ~70 bytes a
 * CID.
 *
 * Only what the diff needs: add (duplicates ignored), delete (says whether it was there),
 * and the entries left, in insertion order. Strings with a character beyond ASCII (never a
 * normalised CID, but a set must not lose them) live in a plain Map beside it.
 */
export class CompactCidSet {
  /** Arena chunks (16 MiB): an entry never spans two, and the arena grows without copying. */
  private readonly chunks: Uint8Array[] = [];
  private readonly chunkBytes: number;
  /** Bytes used in the last chunk. */
  private chunkUsed: number;
  private offsets = new Uint32Array(1 << 14);
  private lengths = new Uint16Array(1 << 14);
  private removed = new Uint8Array(1 << 14);
  private count = 0;
  /** Entry number + 1 per slot; 0 is empty. Deleted entries keep their slot (a tombstone). */
  private slots = new Uint32Array(1 << 15);
  private live = 0;
  /** Non-ASCII strings, in insertion order, each with the entry count when it was added. */
  private readonly other = new Map<string, number>();

  /** `chunkBits`: log2 of a chunk's size (tests make it small to cross chunks). */
  constructor(options: { chunkBits?: number } = {}) {
    const chunkBits = options.chunkBits ?? 24;
    if (chunkBits < 8 || chunkBits > 30) throw new RangeError("chunkBits: 8 to 30");
    this.chunkBytes = 2 ** chunkBits;
    this.chunkUsed = this.chunkBytes;
  }

  get size(): number {
    return this.live + this.other.size;
  }

  add(cid: string): void {
    if (!isAscii(cid)) {
      if (!this.other.has(cid)) this.other.set(cid, this.count);
      return;
    }
    if (cid.length > 0xffff) throw new RangeError("a CID longer than 65,535 characters");
    const hash = hashOf(cid);
    const mask = this.slots.length - 1;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = this.slots[slot] as number;
      if (held === 0) break;
      // Listed twice (two spellings of one CID normalise to one): one entry. A deleted entry
      // stays as a tombstone: added again, the CID goes to the end, as in a Set.
      if (!this.removed[held - 1] && this.equals(held - 1, cid)) return;
    }
    this.append(cid);
    this.place(this.count - 1, hash);
    this.live++;
    // Load factor at most 3/4: linear probing stays short, and the table costs ~5 bytes a CID.
    if (this.count * 4 > this.slots.length * 3) this.rehash();
  }

  /** Removes `cid`; true when it was in the set. */
  delete(cid: string): boolean {
    if (!isAscii(cid)) return this.other.delete(cid);
    const mask = this.slots.length - 1;
    for (let slot = hashOf(cid) & mask; ; slot = (slot + 1) & mask) {
      const held = this.slots[slot] as number;
      if (held === 0) return false;
      if (!this.removed[held - 1] && this.equals(held - 1, cid)) {
        this.removed[held - 1] = 1;
        this.live--;
        return true;
      }
    }
  }

  /** The CIDs still in the set, in the order they were first added. */
  *values(): IterableIterator<string> {
    // Merged by entry count: the Map's order is insertion order, so its counts never fall.
    const others = this.other.entries();
    let other = others.next();
    for (let entry = 0; entry < this.count; entry++) {
      for (; !other.done && other.value[1] <= entry; other = others.next()) yield other.value[0];
      if (!this.removed[entry]) yield this.text(entry);
    }
    for (; !other.done; other = others.next()) yield other.value[0];
  }

  /** The chunk and the start in it of an entry's bytes. */
  private bytesOf(entry: number): [Uint8Array, number] {
    const offset = this.offsets[entry] as number;
    return [
      this.chunks[Math.floor(offset / this.chunkBytes)] as Uint8Array,
      offset % this.chunkBytes,
    ];
  }

  private text(entry: number): string {
    const [chunk, start] = this.bytesOf(entry);
    return latin1.decode(chunk.subarray(start, start + (this.lengths[entry] as number)));
  }

  private hashOfEntry(entry: number): number {
    const [chunk, start] = this.bytesOf(entry);
    const end = start + (this.lengths[entry] as number);
    let hash = FNV_OFFSET;
    for (let i = start; i < end; i++) hash = Math.imul(hash ^ (chunk[i] as number), FNV_PRIME);
    return hash >>> 0;
  }

  private equals(entry: number, cid: string): boolean {
    if (this.lengths[entry] !== cid.length) return false;
    const [chunk, start] = this.bytesOf(entry);
    for (let i = 0; i < cid.length; i++) {
      if (chunk[start + i] !== cid.charCodeAt(i)) return false;
    }
    return true;
  }

  private append(cid: string): void {
    if (cid.length > this.chunkBytes) throw new RangeError("a CID longer than a chunk");
    if (this.chunkUsed + cid.length > this.chunkBytes) {
      this.chunks.push(new Uint8Array(this.chunkBytes));
      this.chunkUsed = 0;
    }
    const chunk = this.chunks[this.chunks.length - 1] as Uint8Array;
    for (let i = 0; i < cid.length; i++) chunk[this.chunkUsed + i] = cid.charCodeAt(i);
    if (this.count === this.offsets.length) {
      this.offsets = grow(this.offsets, this.count + 1);
      this.lengths = grow(this.lengths, this.count + 1);
      this.removed = grow(this.removed, this.count + 1);
    }
    const offset = (this.chunks.length - 1) * this.chunkBytes + this.chunkUsed;
    if (offset > 0xffffffff) throw new RangeError("more than 4 GiB of CIDs in one set");
    this.offsets[this.count] = offset;
    this.lengths[this.count] = cid.length;
    this.chunkUsed += cid.length;
    this.count++;
  }

  private place(entry: number, hash: number): void {
    const mask = this.slots.length - 1;
    let slot = hash & mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & mask;
    this.slots[slot] = entry + 1;
  }

  private rehash(): void {
    this.slots = new Uint32Array(this.slots.length * 2);
    for (let entry = 0; entry < this.count; entry++) this.place(entry, this.hashOfEntry(entry));
  }
}

const latin1 = new TextDecoder("latin1");

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over the characters, as an unsigned 32-bit number (hashOfEntry: the same over bytes). */
function hashOf(text: string): number {
  let hash = FNV_OFFSET;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), FNV_PRIME);
  return hash >>> 0;
}

type TypedArray = Uint8Array | Uint16Array | Uint32Array;

/** A copy of `array` with room for at least `needed` elements (doubling). */
function grow<T extends TypedArray>(array: T, needed: number): T {
  let length = array.length * 2;
  while (length < needed) length *= 2;
  const bigger = new (array.constructor as new (length: number) => T)(length);
  bigger.set(array);
  return bigger;
}
