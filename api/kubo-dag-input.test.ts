import * as dagCbor from "@ipld/dag-cbor";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "./errors.js";
import { decodeKuboDagInput } from "./kubo-dag-input.js";
import { parseGoInt } from "./schemas.js";

const text = (value: string) => new TextEncoder().encode(value);

describe("decodeKuboDagInput", () => {
  it("refuses a float with a safe-integer value, wherever it sits, and only there", () => {
    for (const body of ['{"a":1.0}', "[2e3]", '{"x":{"y":-0.0}}', '["\\"1.0", 5.00]']) {
      expect(() => decodeKuboDagInput(text(body), "dag-json"), body).toThrow(
        /has an integral value/,
      );
      expect(() => decodeKuboDagInput(text(body), "json"), body).toThrow(/has an integral value/);
    }
    for (const body of ['{"a":"1.0"}', '{"s":"\\"2.0\\""}', "[1.5, 1e300, 10, -7]", '"0.0"']) {
      expect(() => decodeKuboDagInput(text(body), "dag-json"), body).not.toThrow();
    }
  });

  it("finds CBOR floats of every width behind strings and bytes", () => {
    const ok = dagCbor.encode({ s: "2.0", b: new Uint8Array([0xfb, 0x40, 0, 0, 0, 0, 0, 0, 0]) });
    expect(() => decodeKuboDagInput(ok, "dag-cbor")).not.toThrow();
    // {"a": 2.0} as float64, then as float32 and float16 (not canonical dag-cbor: refused either way).
    for (const hex of ["a16161fb4000000000000000", "a16161fa40000000", "a16161f94000"]) {
      expect(() => decodeKuboDagInput(Buffer.from(hex, "hex"), "dag-cbor"), hex).toThrow(
        InvalidArgumentError,
      );
    }
    expect(() =>
      decodeKuboDagInput(Buffer.from("a16161fb3ff8000000000000", "hex"), "dag-cbor"),
    ).not.toThrow();
  });

  it('refuses a "/" key with input-codec=json, keeps big integers exact', () => {
    expect(() => decodeKuboDagInput(text('{"a":[{"/":"x"}]}'), "json")).toThrow(/keyed "\/"/);
    expect(decodeKuboDagInput(text('{"n":9007199254740993}'), "json")).toEqual({
      n: 9007199254740993n,
    });
  });
});

describe("parseGoInt (Go's strconv.ParseInt, base 0)", () => {
  it("reads what Go reads", () => {
    for (const [raw, value] of [
      ["0", 0n],
      ["42", 42n],
      ["-1", -1n],
      ["+7", 7n],
      ["0x10", 16n],
      ["0X1f", 31n],
      ["010", 8n],
      ["0o17", 15n],
      ["0b101", 5n],
      ["1_000", 1000n],
      ["0x_ff", 255n],
      ["9223372036854775807", 9223372036854775807n],
    ] as const) {
      expect(parseGoInt(raw), raw).toBe(value);
    }
  });

  it("refuses what Go refuses", () => {
    for (const raw of [
      "",
      " 5",
      "1.5",
      "1e3",
      "abc",
      "08",
      "1__0",
      "_1",
      "1_",
      "0x",
      "9223372036854775808",
    ]) {
      expect(parseGoInt(raw), raw).toBeUndefined();
    }
  });
});
