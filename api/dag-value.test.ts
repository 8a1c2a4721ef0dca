import { CID } from "multiformats/cid";
import { describe, expect, it } from "vitest";
import { findUnrepresentable } from "./dag-value.js";

describe("findUnrepresentable", () => {
  it("accepts what the data model holds: numbers, strings with pairs, bytes, links, nesting", () => {
    const cid = CID.parse("bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy");
    expect(
      findUnrepresentable({
        a: 1,
        b: -2.5,
        c: "😀 ok",
        d: [true, null],
        e: new Uint8Array([1]),
        f: cid,
      }),
    ).toBeUndefined();
  });

  it("names the JSON Pointer of an out-of-range number", () => {
    expect(findUnrepresentable(JSON.parse('{"a":1e400}'))).toEqual({
      path: "/a",
      problem: expect.stringContaining("Infinity"),
    });
    expect(findUnrepresentable({ list: [1, { x: -Infinity }] })?.path).toBe("/list/1/x");
    expect(findUnrepresentable(Number.NaN)?.path).toBe("");
  });

  it("names lone surrogates in values and keys, escaping ~ and / in the pointer", () => {
    expect(findUnrepresentable(JSON.parse('{"a/b~":"\\ud800"}'))?.path).toBe("/a~1b~0");
    expect(findUnrepresentable(JSON.parse('{"k\\udc00":1}'))?.path).toBe("/k\udc00");
    expect(findUnrepresentable(["\udbff\udfff"])).toBeUndefined();
  });
});
