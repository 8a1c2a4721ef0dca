import { CID } from "multiformats/cid";

/**
 * The key a listed CID is compared by (CIDv1 in base32, as the desired set stores it), read
 * without building a CID where the node already spells it that way.
 *
 * A sweep of a large node lists millions of pins, and `CID.parse(text).toV1().toString()`
 * costs about 4 µs each (base32 decode, CID decode, base32 encode): 4 s per million pins,
 * more than the diff itself. Kubo lists CIDv1 pins in base32 already, so `canonicalV1Key`
 * checks the text's shape instead and returns it as is. Anything it cannot vouch for (a
 * CIDv0, another base, upper case, a non-minimal varint) returns undefined, and the caller
 * takes the full path, which also rejects what is not a CID.
 */

const BASE32 = "abcdefghijklmnopqrstuvwxyz234567";
/** Base32 symbol value by char code; -1 for characters outside the alphabet. */
const SYMBOL = new Int8Array(128).fill(-1);
for (let i = 0; i < BASE32.length; i++) SYMBOL[BASE32.charCodeAt(i)] = i;

/** Longest text taken by the fast path: a 64-byte digest with long codes fits in 128. */
const MAX_KEY_LENGTH = 128;
/** Header bytes decoded up front: version, codec, hash code and digest length (≤ 4 each). */
const HEADER_BYTES = 16;

// Scratch space for the decoded header, and the varint reader's cursor into it: the check
// runs once per listed pin, so it allocates nothing (it never awaits, so nothing interleaves).
const header = new Uint8Array(HEADER_BYTES);
let headerLength = 0;
let cursor = 0;

/** The next minimal unsigned varint of the header, or -1 (cut short, too long, not minimal). */
function nextVarint(): number {
  let value = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (cursor >= headerLength) return -1;
    const byte = header[cursor++] ?? 0;
    value += (byte & 0x7f) * 2 ** shift;
    // Minimal encoding only: a trailing zero byte would be re-encoded shorter.
    if ((byte & 0x80) === 0) return byte === 0 && shift > 0 ? -1 : value;
  }
  return -1;
}

/**
 * `text` itself when it is exactly what `CID.parse(text).toV1().toString()` would give (a
 * well-formed CIDv1 in canonical base32), else undefined. Never throws.
 */
export function canonicalV1Key(text: string): string | undefined {
  const length = text.length;
  if (length < 2 || length > MAX_KEY_LENGTH || text.charCodeAt(0) !== 98 /* b */) return;
  const bits = 5 * (length - 1);
  const size = bits >>> 3;
  // Canonical base32 ends within its last byte's symbol (fewer than 5 bits left over), and
  // those leftover bits are zero.
  const leftover = bits & 7;
  const last = SYMBOL[text.charCodeAt(length - 1)] ?? -1;
  if (leftover >= 5 || last < 0 || (last & ((1 << leftover) - 1)) !== 0) return;
  const wanted = Math.min(HEADER_BYTES, size);
  let buffer = 0;
  let held = 0;
  headerLength = 0;
  for (let i = 1; i < length; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? (SYMBOL[code] ?? -1) : -1;
    if (value < 0) return;
    if (headerLength === wanted) continue; // the rest is only checked for its alphabet
    buffer = ((buffer << 5) | value) & 0xffff;
    held += 5;
    if (held >= 8) {
      held -= 8;
      header[headerLength++] = (buffer >>> held) & 0xff;
    }
  }
  cursor = 0;
  if (nextVarint() !== 1) return; // CIDv1
  if (nextVarint() < 0) return; // codec
  if (nextVarint() < 0) return; // multihash code
  const digestLength = nextVarint();
  if (digestLength < 0 || cursor + digestLength !== size) return;
  return text;
}

/**
 * The comparison key of a listed CID text: the text itself when canonicalV1Key vouches for
 * it, else the full parse (which throws on what is not a CID).
 */
export function listedCidKey(text: string): string {
  return canonicalV1Key(text) ?? CID.parse(text).toV1().toString();
}
