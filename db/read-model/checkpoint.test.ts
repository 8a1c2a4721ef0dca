import { describe, expect, test } from "vitest";
import { completeBlockOf, decodeCheckpoint } from "./checkpoint.js";

// Built the way node_modules/ponder/dist/esm/utils/checkpoint.js encodes them.
const encode = (parts: {
  ts: bigint;
  chain: bigint;
  block: bigint;
  tx: bigint;
  type: number;
  index: bigint;
}) =>
  `${parts.ts.toString().padStart(10, "0")}${parts.chain.toString().padStart(16, "0")}${parts.block
    .toString()
    .padStart(
      16,
      "0",
    )}${parts.tx.toString().padStart(16, "0")}${parts.type}${parts.index.toString().padStart(16, "0")}`;

const MAX = 9_999_999_999_999_999n;

describe("decodeCheckpoint", () => {
  test("reads the block number from characters 27-42 and the chain from 11-26", () => {
    const checkpoint = encode({
      ts: 1_700_000_000n,
      chain: 31337n,
      block: 123_456n,
      tx: 2n,
      type: 5,
      index: 7n,
    });
    expect(checkpoint).toHaveLength(75);
    expect(checkpoint.slice(26, 42)).toBe("0000000000123456");
    expect(decodeCheckpoint(checkpoint)).toEqual({
      blockTimestamp: 1_700_000_000n,
      chainId: 31337,
      blockNumber: 123_456n,
      blockComplete: false,
    });
  });

  test("a block's end (every later field at its maximum) is complete", () => {
    const end = encode({ ts: 1n, chain: 1n, block: 10n, tx: MAX, type: 9, index: MAX });
    const position = decodeCheckpoint(end);
    expect(position?.blockComplete).toBe(true);
    expect(position && completeBlockOf(position)).toBe(10n);
  });

  test("a checkpoint inside a block vouches only for the block before", () => {
    const inside = decodeCheckpoint(
      encode({ ts: 1n, chain: 1n, block: 10n, tx: 0n, type: 5, index: 3n }),
    );
    expect(inside && completeBlockOf(inside)).toBe(9n);
    const zero = decodeCheckpoint(
      encode({ ts: 0n, chain: 0n, block: 0n, tx: 0n, type: 0, index: 0n }),
    );
    expect(zero && completeBlockOf(zero)).toBe(0n);
  });

  test("rejects strings that are not checkpoints", () => {
    expect(decodeCheckpoint("")).toBeUndefined();
    expect(decodeCheckpoint("1".repeat(74))).toBeUndefined();
    expect(decodeCheckpoint(`${"1".repeat(74)}x`)).toBeUndefined();
  });
});
