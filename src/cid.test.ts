import { describe, expect, it } from "vitest";
import { checkCid, InvalidCidError, MAX_CID_LENGTH, normalizeCid } from "./cid.js";

const V0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
const V1 = "bafybeie5nqv6kd3qnfjupgvz34woh3oksc3iau6abmyajn7qvtf6d2ho34";

describe("checkCid", () => {
  it.each([
    [V0, V1],
    [V1, V1],
    ["BAFYBEIE5NQV6KD3QNFJUPGVZ34WOH3OKSC3IAU6ABMYAJN7QVTF6D2HO34", V1],
    [
      "zdj7WWeQ43G6JJvLWQWZpyHuAMq6uYWRjkBXFad11vE2LHhQ7",
      "bafybeiasb5vpmaounyilfuxbd3lryvosl4yefqrfahsb2esg46q6tu6y5q",
    ],
  ])("normalises %s to CIDv1 base32", (raw, expected) => {
    expect(checkCid(raw)).toEqual({ valid: true, cid: expected });
  });

  it.each([
    ["", "empty"],
    ["x".repeat(10_000), "too_long"],
    ["Q".repeat(MAX_CID_LENGTH + 1), "too_long"],
    [` ${V0}`, "whitespace"],
    [`${V0}\n`, "whitespace"],
    [`/ipfs/${V0}`, "has_path"],
    [`${V0}/index.html`, "has_path"],
    ["garbage", "not_a_cid"],
    ["😀ünï\u0301", "not_a_cid"],
    ["Qm\u0000", "not_a_cid"],
    ["\ud800", "not_a_cid"],
    [V0.slice(0, -1), "not_a_cid"],
  ])("classifies %j as invalid (%s) without throwing", (raw, reason) => {
    const check = checkCid(raw);
    expect(check.valid).toBe(false);
    if (!check.valid) {
      expect(check.reason).toBe(reason);
      expect(check.detail.length).toBeGreaterThan(0);
      expect(check.detail.length).toBeLessThanOrEqual(200);
    }
  });

  it("normalizeCid throws a typed error", () => {
    expect(() => normalizeCid("nope")).toThrow(InvalidCidError);
    expect(normalizeCid(V0)).toBe(V1);
  });
});
