import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { CompactCidSet } from "./cid-set.js";

/** A Set<string> driven alongside: the compact set must agree with it at every step. */
function agree(ops: Array<["add" | "delete", string]>, chunkBits?: number) {
  const compact = new CompactCidSet({ chunkBits });
  const plain = new Set<string>();
  for (const [op, cid] of ops) {
    if (op === "add") {
      compact.add(cid);
      plain.add(cid);
    } else {
      expect(compact.delete(cid), `delete ${cid}`).toBe(plain.delete(cid));
    }
  }
  expect(compact.size).toBe(plain.size);
  return { compact, plain };
}

describe("CompactCidSet", () => {
  it("adds once, deletes once, and lists what is left in insertion order", () => {
    const set = new CompactCidSet();
    for (const cid of ["bafyb", "bafya", "bafyb", "bafyc"]) set.add(cid);
    expect(set.size).toBe(3);
    expect(set.delete("bafya")).toBe(true);
    expect(set.delete("bafya")).toBe(false);
    expect(set.delete("bafyz")).toBe(false);
    expect([...set.values()]).toEqual(["bafyb", "bafyc"]);
  });

  it("keeps strings beyond ASCII too, in their place in the order", () => {
    const set = new CompactCidSet();
    for (const cid of ["a", "é1", "b", "é1", "漢", "c"]) set.add(cid);
    expect([...set.values()]).toEqual(["a", "é1", "b", "漢", "c"]);
    expect(set.delete("é1")).toBe(true);
    expect([...set.values()]).toEqual(["a", "b", "漢", "c"]);
    expect(set.size).toBe(4);
    // Added again after a delete: at the end, once, as a Set does.
    set.add("é1");
    expect([...set.values()]).toEqual(["a", "b", "漢", "c", "é1"]);
  });

  it("tells apart strings of one length, prefixes and the empty string", () => {
    const { compact } = agree([
      ["add", ""],
      ["add", "ab"],
      ["add", "ba"],
      ["add", "abc"],
      ["delete", "a"],
      ["delete", "ab"],
      ["delete", ""],
    ]);
    expect([...compact.values()]).toEqual(["ba", "abc"]);
  });

  it("keeps lengths beyond one header byte, and refuses one beyond 32,767", () => {
    const long = (n: number, c: string) => c.repeat(n);
    const { compact } = agree([
      ["add", long(300, "a")],
      ["add", long(44, "a")], // 300 & 0xff: a one-byte length would confuse the two
      ["add", long(32_767, "b")],
      ["delete", long(44, "a")],
      ["delete", long(300, "b")],
    ]);
    expect([...compact.values()]).toEqual([long(300, "a"), long(32_767, "b")]);
    expect(() => compact.add(long(32_768, "c"))).toThrow(RangeError);
  });

  it("agrees with a Set over many random operations, across table growth and arena chunks", () => {
    const random = () =>
      `${Math.random() < 0.01 ? "é" : "bafk"}${Math.floor(Math.random() * 60_000).toString(36)}`;
    const ops: Array<["add" | "delete", string]> = [];
    for (let i = 0; i < 120_000; i++) ops.push([Math.random() < 0.6 ? "add" : "delete", random()]);
    // 1 KiB chunks: hundreds of them; the table doubles several times past its 32,768 slots.
    const { compact, plain } = agree(ops, 10);
    expect([...compact.values()]).toEqual([...plain]);
  });

  it("agrees with a Set on CIDs spread over its buckets, adds and deletes interleaved", () => {
    const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
    const pool = Array.from({ length: 20_000 }, () => {
      let cid = Math.random() < 0.5 ? "bafkrei" : "bafybei";
      for (let i = 0; i < 52; i++) cid += alphabet[Math.floor(Math.random() * 32)];
      return cid;
    });
    const pick = () => pool[Math.floor(Math.random() * pool.length)] as string;
    const ops: Array<["add" | "delete", string]> = [];
    // First adds only (buckets take duplicates before their tables are built), then a mix.
    for (let i = 0; i < 30_000; i++) ops.push(["add", pick()]);
    for (let i = 0; i < 60_000; i++) ops.push([Math.random() < 0.5 ? "add" : "delete", pick()]);
    const { compact, plain } = agree(ops, 12);
    expect([...compact.values()]).toEqual([...plain]);
  });

  it("deletes a CID given as ASCII bytes, as delete() does", () => {
    const cids = ["bafkreiaaaa", "bafkreiabcd", "bafybeiqqqq", "short", ""];
    const set = new CompactCidSet();
    for (const cid of cids) set.add(cid);
    set.add("bafkreiabcd"); // listed twice: one entry
    const text = "xxbafkreiabcd\nbafkreizzzz\nshort\nbafkreiabcd";
    const bytes = new TextEncoder().encode(text);
    const range = (word: string, from = 0) => {
      const start = text.indexOf(word, from);
      return [start, start + word.length] as const;
    };
    expect(set.deleteAscii(bytes, ...range("bafkreiabcd"))).toBe(true);
    expect(set.deleteAscii(bytes, ...range("bafkreizzzz"))).toBe(false);
    expect(set.deleteAscii(bytes, ...range("short"))).toBe(true);
    // The same CID again (its second line): gone already.
    expect(set.deleteAscii(bytes, ...range("bafkreiabcd", 20))).toBe(false);
    // The empty string is a member too, and a prefix is not the CID.
    expect(set.deleteAscii(bytes, 2, 2)).toBe(true);
    expect(set.deleteAscii(bytes, 2, 9)).toBe(false);
    expect([...set.values()]).toEqual(["bafkreiaaaa", "bafybeiqqqq"]);
    expect(set.size).toBe(2);
  });

  it("holds a million CIDs in a fraction of a Set's memory", () => {
    // Spread over the buckets, as a real listing's CIDs are.
    const cid = (i: number) => `bafkrei${(i * 2_654_435_761).toString(32).padStart(52, "a")}`;
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    gc();
    const before = process.memoryUsage();
    const set = new CompactCidSet();
    for (let i = 0; i < 1_000_000; i++) set.add(cid(i));
    // Every table built (a sweep builds them all as its lookups arrive).
    expect(set.size).toBe(1_000_000);
    gc();
    const after = process.memoryUsage();
    const bytesPerCid =
      (after.arrayBuffers - before.arrayBuffers + (after.heapUsed - before.heapUsed)) / 1e6;
    expect(set.delete(cid(123_456))).toBe(true);
    expect(set.delete(cid(123_456))).toBe(false);
    // A Set<string> of these took ~280 bytes a CID here; the arenas and tables ~80.
    console.log(`CompactCidSet: ${bytesPerCid.toFixed(1)} bytes a CID at 1M`);
    expect(bytesPerCid).toBeGreaterThan(60);
    expect(bytesPerCid).toBeLessThan(120);
  });
});
