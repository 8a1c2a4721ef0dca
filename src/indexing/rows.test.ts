import { CID } from "multiformats/cid";
import { describe, expect, test } from "vitest";
import { type LogMeta, pinHashRow, registrationRow, storableText } from "./rows.js";

const meta: LogMeta = {
  id: "1".padStart(75, "0"),
  chainId: 31337,
  blockNumber: 7n,
  blockHash: "0xABCDEF00000000000000000000000000000000000000000000000000000000AA",
  blockTimestamp: 1_700_000_000n,
  transactionHash: "0xDEADBEEF000000000000000000000000000000000000000000000000000000BB",
  logIndex: 3,
  contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3",
};

const V0 = "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u";
// The same content as CIDv1 base32, computed by multiformats itself.
const V1 = CID.parse(V0).toV1().toString();

describe("pinHashRow", () => {
  test("normalises a valid CID to CIDv1 base32 and keeps the raw string", () => {
    const row = pinHashRow(meta, V0);
    expect(row).toMatchObject({
      kind: "pin_hash",
      rawCid: V0,
      cid: V1,
      invalidReason: null,
      subject: null,
    });
  });

  test("lowercases the emitter and hashes, keeps position fields", () => {
    const row = pinHashRow(meta, V1);
    expect(row.contract).toBe("0x5fbdb2315678afecb367f032d93f642f64180aa3");
    expect(row.blockHash).toBe(meta.blockHash.toLowerCase());
    expect(row.transactionHash).toBe(meta.transactionHash.toLowerCase());
    expect(row).toMatchObject({ id: meta.id, chainId: 31337, blockNumber: 7n, logIndex: 3 });
  });

  test.each([
    ["", "empty"],
    ["garbage", "not_a_cid"],
    ["x".repeat(10_240), "too_long"],
    [`/ipfs/${V1}`, "has_path"],
    [`${V1}/readme.md`, "has_path"],
    [` ${V1}`, "whitespace"],
    ["héllo 🚀", "whitespace"],
    ["🚀🚀🚀", "not_a_cid"],
  ])("records %j as invalid (%s)", (raw, reason) => {
    const row = pinHashRow(meta, raw);
    expect(row.cid).toBeNull();
    expect(row.invalidReason?.startsWith(`${reason}: `)).toBe(true);
    expect(row.rawCid).toBe(raw);
  });

  test("a NUL is stored as U+FFFD and the string is invalid", () => {
    const row = pinHashRow(meta, `${V1}\u0000`);
    expect(row.rawCid).toBe(`${V1}\uFFFD`);
    expect(row.rawCid).not.toContain("\u0000");
    expect(row.cid).toBeNull();
    expect(row.invalidReason).toMatch(/^not_a_cid: /);
  });

  test("lone surrogates become U+FFFD; paired ones are kept", () => {
    const row = pinHashRow(meta, "a\uD800b\uDC00c😀");
    expect(row.rawCid).toBe("a\uFFFDb\uFFFDc😀");
    expect(row.cid).toBeNull();
  });
});

describe("registrationRow", () => {
  test("stores the registered address lowercase, whatever its case", () => {
    const checksummed = registrationRow(
      meta,
      "register",
      "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    );
    const lower = registrationRow(meta, "unregister", "0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
    expect(checksummed.subject).toBe("0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
    expect(lower.subject).toBe(checksummed.subject);
    expect(checksummed).toMatchObject({
      kind: "register",
      rawCid: null,
      cid: null,
      invalidReason: null,
    });
    expect(lower.kind).toBe("unregister");
  });
});

describe("storableText", () => {
  test("leaves ordinary text alone and replaces only what Postgres cannot store", () => {
    expect(storableText("plain ascii")).toBe("plain ascii");
    expect(storableText("\u0000\u0000")).toBe("\uFFFD\uFFFD");
    expect(storableText("\uDBFF")).toBe("\uFFFD");
    expect(storableText("x\uDC00")).toBe("x\uFFFD");
    expect(storableText("\uD83D\uDE00")).toBe("😀");
  });
});
