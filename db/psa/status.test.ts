import { describe, expect, it } from "vitest";
import { derivePsaStatus, type LedgerCounts, type PsaStatus } from "./status.js";

/** Ledger counts of a request the desired step has counted. */
const counted = (pinned: number, pinning: number, failed: number): LedgerCounts => ({
  pinned,
  pinning,
  failed,
  taken: true,
});
const two = { backendIds: ["a", "b"], required: 2 };
const oneOfTwo = { backendIds: ["a", "b"], required: 1 };

describe("derivePsaStatus: the request's status from the ledger and the replicas required", () => {
  it.each<[string, LedgerCounts, typeof two, PsaStatus]>([
    ["no ledger row yet", counted(0, 0, 0), two, "queued"],
    ["one backend pinning", counted(0, 1, 0), two, "pinning"],
    ["one of two required pinned", counted(1, 0, 0), two, "pinning"],
    ["both pinned", counted(2, 0, 0), two, "pinned"],
    ["one required, one pinned", counted(1, 0, 1), oneOfTwo, "pinned"],
    ["one gave up, two required", counted(1, 0, 1), two, "failed"],
    ["one gave up, one required, other pinning", counted(0, 1, 1), oneOfTwo, "pinning"],
    ["both gave up, one required", counted(0, 0, 2), oneOfTwo, "failed"],
    ["required 0 counts as 1", counted(1, 0, 0), { backendIds: ["a"], required: 0 }, "pinned"],
    // The ledger may still hold the outcome of a decision made without the request.
    ["not counted yet, pinned", { ...counted(2, 0, 0), taken: false }, two, "queued"],
    ["not counted yet, failed", { ...counted(0, 0, 2), taken: false }, two, "queued"],
  ])("%s", (_, counts, rule, expected) => {
    expect(derivePsaStatus(counts, rule)).toBe(expected);
  });
});
