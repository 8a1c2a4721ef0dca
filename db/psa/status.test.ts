import { describe, expect, it } from "vitest";
import { derivePsaStatus, type LedgerCounts, type PsaStatus } from "./status.js";

const two = { backendIds: ["a", "b"], required: 2 };
const oneOfTwo = { backendIds: ["a", "b"], required: 1 };

describe("derivePsaStatus: the request's status from the ledger and the replicas required", () => {
  it.each<[string, LedgerCounts, typeof two, PsaStatus]>([
    ["no ledger row yet", { pinned: 0, pinning: 0, failed: 0 }, two, "queued"],
    ["one backend pinning", { pinned: 0, pinning: 1, failed: 0 }, two, "pinning"],
    ["one of two required pinned", { pinned: 1, pinning: 0, failed: 0 }, two, "pinning"],
    ["both pinned", { pinned: 2, pinning: 0, failed: 0 }, two, "pinned"],
    ["one required, one pinned", { pinned: 1, pinning: 0, failed: 1 }, oneOfTwo, "pinned"],
    ["one gave up, two required", { pinned: 1, pinning: 0, failed: 1 }, two, "failed"],
    [
      "one gave up, one required, other pinning",
      { pinned: 0, pinning: 1, failed: 1 },
      oneOfTwo,
      "pinning",
    ],
    ["both gave up, one required", { pinned: 0, pinning: 0, failed: 2 }, oneOfTwo, "failed"],
    [
      "required 0 counts as 1",
      { pinned: 1, pinning: 0, failed: 0 },
      { backendIds: ["a"], required: 0 },
      "pinned",
    ],
  ])("%s", (_, counts, rule, expected) => {
    expect(derivePsaStatus(counts, rule)).toBe(expected);
  });
});
