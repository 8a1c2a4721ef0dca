import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { describe, expect, it } from "vitest";
import { diffPins } from "./diff.js";

async function* from(items: string[]) {
  for (const item of items) yield item;
}

describe("diffPins", () => {
  it("returns desired CIDs missing from the listing and listed CIDs not desired", async () => {
    const result = await diffPins(from(["a", "b", "c", "d"]), from(["y", "d", "x", "b", "0"]));
    expect(result).toEqual({ toPin: ["a", "c"], toUnpin: ["y", "x", "0"] });
  });

  it("handles empty sides and duplicates in the listing", async () => {
    expect(await diffPins(from([]), from(["x", "x"]))).toEqual({ toPin: [], toUnpin: ["x"] });
    expect(await diffPins(from(["a"]), from([]))).toEqual({ toPin: ["a"], toUnpin: [] });
  });

  it("never reports a desired CID listed twice as not desired", async () => {
    expect(await diffPins(from(["d"]), from(["d", "x", "d"]))).toEqual({
      toPin: [],
      toUnpin: ["x"],
    });
  });

  it("takes pages as well as single CIDs on either side", async () => {
    async function* pages() {
      yield ["a", "b"];
      yield "c";
      yield [];
    }
    expect(await diffPins(pages(), from(["c", "z"]))).toEqual({
      toPin: ["a", "b"],
      toUnpin: ["z"],
    });
  });

  it("takes pages of text (one CID a line) and answers as with strings, ASCII or not", async () => {
    const cid = (i: number) => `bafkrei${(i * 7919).toString(32).padStart(52, "a")}`;
    const desired = Array.from({ length: 3_000 }, (_, i) => cid(i)).sort();
    const listing = [...desired.filter((_, i) => i % 3 !== 0), "bafkreiforeign", "é-foreign"];
    const expected = {
      toPin: desired.filter((_, i) => i % 3 === 0),
      toUnpin: ["bafkreiforeign", "é-foreign"],
    };
    async function* lines(cids: string[], pageSize: number) {
      for (let i = 0; i < cids.length; i += pageSize) {
        const page = cids.slice(i, i + pageSize);
        yield { text: page.join("\n"), count: page.length };
      }
    }
    for (const prefetch of [0, 500, 1_000_000]) {
      expect(await diffPins(lines(desired, 700), from(listing), { prefetch })).toEqual(expected);
    }
    // A page with a character beyond ASCII is read as strings; its CIDs still match.
    const wide = [...desired.slice(0, 10), "é-foreign", "ü-wanted"];
    expect(await diffPins(lines(wide, 100), from(listing))).toEqual({
      toPin: [...expected.toPin.filter((c) => wide.includes(c)), "ü-wanted"],
      toUnpin: listing.filter((c) => !wide.includes(c)),
    });
    // Pages of text on the listing side too.
    expect(await diffPins(from(desired), lines(listing, 999))).toEqual(expected);
  });

  it("agrees with a set difference on random inputs", async () => {
    const random = (n: number) =>
      Array.from({ length: n }, () => Math.random().toString(36).slice(2, 5));
    for (let round = 0; round < 50; round++) {
      const desired = [...new Set(random(40))].sort();
      const listing = random(40);
      // Read-ahead off, partial and unbounded: the answer never depends on it.
      for (const prefetch of [0, 7, 1_000]) {
        const result = await diffPins(from(desired), from(listing), { prefetch });
        expect(result.toPin).toEqual(desired.filter((cid) => !listing.includes(cid)));
        expect(result.toUnpin).toEqual([
          ...new Set(listing.filter((cid) => !desired.includes(cid))),
        ]);
      }
    }
  });

  it("fails when the listing fails, without leaving the desired side running", async () => {
    let pulled = 0;
    async function* desired() {
      for (let i = 0; i < 1_000; i++) {
        pulled++;
        yield `c${String(i).padStart(4, "0")}`;
      }
    }
    async function* broken() {
      yield "a";
      throw new Error("daemon went away");
    }
    await expect(diffPins(desired(), broken(), { prefetch: 10 })).rejects.toThrow(
      "daemon went away",
    );
    expect(pulled).toBeLessThanOrEqual(11);
  });

  it("stops on an aborted signal", async () => {
    await expect(
      diffPins(from(["a"]), from(["b"]), { signal: AbortSignal.abort() }),
    ).rejects.toThrow();
  });

  it("keeps no page of the desired stream alive through the CIDs it returns", async () => {
    // Pages as the store sends them: one text split into slices. One CID of each page is
    // missing from the listing, so toPin holds one CID per page.
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const PAGES = 100;
    const PER_PAGE = 5_000;
    const cid = (page: number, i: number) => `bafkrei${page}x${i}`.padEnd(59, "q");
    async function* desired() {
      for (let page = 0; page < PAGES; page++)
        yield Array.from({ length: PER_PAGE }, (_, i) => cid(page, i))
          .join("\n")
          .split("\n");
    }
    async function* listing() {
      for (let page = 0; page < PAGES; page++)
        yield Array.from({ length: PER_PAGE - 1 }, (_, i) => cid(page, i + 1));
    }
    gc();
    const before = process.memoryUsage().heapUsed;
    const result = await diffPins(desired(), listing());
    gc();
    const grown = process.memoryUsage().heapUsed - before;
    expect(result.toPin).toHaveLength(PAGES);
    // The pages are 30 MB of text; the 100 CIDs kept, a few KB.
    expect(grown).toBeLessThan(8 * 2 ** 20);
  });
});
