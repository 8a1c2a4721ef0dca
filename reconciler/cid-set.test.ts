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

  it("holds a million CIDs in a fraction of a Set's memory", () => {
    const cid = (i: number) => `bafkreie${i.toString(32).padStart(52, "0")}`;
    const before = process.memoryUsage();
    const set = new CompactCidSet();
    for (let i = 0; i < 1_000_000; i++) set.add(cid(i));
    const after = process.memoryUsage();
    const bytesPerCid =
      (after.arrayBuffers - before.arrayBuffers + (after.heapUsed - before.heapUsed)) / 1e6;
    expect(set.size).toBe(1_000_000);
    expect(set.delete(cid(123_456))).toBe(true);
    expect(set.delete(cid(123_456))).toBe(false);
    // A Set<string> of these took ~280 bytes a CID here; the arena, offsets and table ~80.
    console.log(`CompactCidSet: ${bytesPerCid.toFixed(1)} bytes a CID at 1M`);
    expect(bytesPerCid).toBeLessThan(120);
  });
});
