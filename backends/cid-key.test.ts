import { randomBytes } from "node:crypto";
import { varint } from "multiformats";
import { base32 } from "multiformats/bases/base32";
import { base36 } from "multiformats/bases/base36";
import { CID } from "multiformats/cid";
import { create as createDigest } from "multiformats/hashes/digest";
import { describe, expect, it } from "vitest";
import { canonicalV1Key, listedCidKey } from "./cid-key.js";

/** What the full path gives, or undefined where it throws. */
function slowKey(text: string): string | undefined {
  try {
    return CID.parse(text).toV1().toString();
  } catch {
    return undefined;
  }
}

function cidOf(codec: number, hashCode: number, digestBytes: number): CID {
  return CID.createV1(codec, createDigest(hashCode, randomBytes(digestBytes)));
}

/** A dag-pb sha2-256 CIDv1, the kind that also has a CIDv0 spelling. */
function dagPb(): CID<unknown, 0x70, 0x12, 1> {
  return CID.createV1(0x70, createDigest(0x12, randomBytes(32)));
}

/** Base32 text of arbitrary bytes, prefixed like a CID (whether or not they are one). */
function text(bytes: Uint8Array): string {
  return base32.encode(bytes);
}

describe("canonicalV1Key", () => {
  it("takes real CIDv1s as they are: every codec and hash shape Quasar meets", () => {
    const shapes: [number, number, number][] = [
      [0x55, 0x12, 32], // raw, sha2-256
      [0x70, 0x12, 32], // dag-pb, sha2-256
      [0x71, 0x12, 32], // dag-cbor
      [0x0129, 0x12, 32], // dag-json (two-byte codec)
      [0x55, 0xb220, 32], // blake2b-256 (three-byte hash code)
      [0x55, 0x13, 64], // sha2-512
      [0x55, 0x00, 5], // identity, short
      [0x55, 0x00, 0], // identity, empty
    ];
    for (const [codec, hash, size] of shapes) {
      for (let i = 0; i < 50; i++) {
        const spelled = cidOf(codec, hash, size).toString();
        expect(canonicalV1Key(spelled)).toBe(spelled);
        expect(slowKey(spelled)).toBe(spelled);
      }
    }
  });

  it("leaves every other spelling to the full path, which normalises it", () => {
    const cid = dagPb();
    const v0 = CID.createV0(cid.multihash).toString();
    for (const other of [
      v0,
      cid.toString(base36),
      cid.toString().toUpperCase(),
      `B${cid.toString().slice(1)}`,
    ]) {
      expect(canonicalV1Key(other)).toBeUndefined();
    }
    expect(listedCidKey(v0)).toBe(cid.toString());
    expect(listedCidKey(cid.toString(base36))).toBe(cid.toString());
  });

  it("refuses what is not a canonical CIDv1 (the full path then throws or differs)", () => {
    const good = cidOf(0x55, 0x12, 32);
    const bytes = good.bytes;
    const cases = [
      "",
      "b",
      "bafy",
      `${good.toString()}a`, // one symbol too many
      good.toString().slice(0, -1), // one too few
      `${good.toString().slice(0, -1)}9`, // outside the alphabet
      text(Uint8Array.from([0x02, ...bytes.subarray(1)])), // version 2
      text(Uint8Array.from([...bytes, 0])), // digest longer than its length says
      text(bytes.subarray(0, -1)), // shorter
      text(Uint8Array.from([0x81, 0x00, ...bytes.subarray(1)])), // version 1, non-minimal varint
    ];
    for (const each of cases) {
      expect(canonicalV1Key(each), each).toBeUndefined();
    }
  });

  it("never answers where the full path would not give the same text (random texts)", () => {
    let taken = 0;
    for (let i = 0; i < 20_000; i++) {
      let candidate: string;
      if (i % 2 === 0) {
        // A real CID's bytes with one byte changed somewhere in the header.
        const bytes = cidOf([0x55, 0x70, 0x0129][i % 3] ?? 0x55, 0x12, 32).bytes.slice();
        const at = i % 6;
        bytes[at] = randomBytes(1)[0] ?? 0;
        candidate = text(bytes);
      } else {
        // Random lengths and header bytes, and sometimes a changed last symbol.
        const header = Uint8Array.from([
          1,
          ...varint
            .encodeTo(i % 300, new Uint8Array(2))
            .subarray(0, varint.encodingLength(i % 300)),
          0x12,
          i % 40,
        ]);
        const bytes = Uint8Array.from([...header, ...randomBytes(i % 45)]);
        candidate = text(bytes);
        if (i % 5 === 1)
          candidate = candidate.slice(0, -1) + "abcdefghijklmnopqrstuvwxyz234567"[i % 32];
      }
      const fast = canonicalV1Key(candidate);
      if (fast !== undefined) {
        taken++;
        expect(slowKey(candidate), candidate).toBe(fast);
      }
    }
    // Both kinds of input were exercised: some taken, some left to the full path.
    expect(taken).toBeGreaterThan(1_000);
    expect(taken).toBeLessThan(20_000);
  });
});

describe("listedCidKey", () => {
  it("gives the normalised text either way", () => {
    const cid = dagPb();
    expect(listedCidKey(cid.toString())).toBe(cid.toString());
    expect(listedCidKey(CID.createV0(cid.multihash).toString())).toBe(cid.toString());
  });

  it("throws on what is not a CID, as CID.parse does", () => {
    expect(() => listedCidKey("not-a-cid")).toThrow();
    expect(() => listedCidKey("bafy")).toThrow();
  });
});
