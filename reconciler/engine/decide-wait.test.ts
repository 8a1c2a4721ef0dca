import { describe, expect, it } from "vitest";
import { decideNextStepDelay } from "./decide-wait.js";

describe("decideNextStepDelay", () => {
  const nowMs = 1_000_000;
  it("waits one interval when nothing is scheduled or it is due later", () => {
    expect(decideNextStepDelay({ nowMs, nextChangeAt: null, intervalMs: 2_000 })).toBe(2_000);
    expect(
      decideNextStepDelay({ nowMs, nextChangeAt: new Date(nowMs + 5_000), intervalMs: 2_000 }),
    ).toBe(2_000);
  });

  it("wakes for an expiry due before the interval ends", () => {
    expect(
      decideNextStepDelay({ nowMs, nextChangeAt: new Date(nowMs + 700), intervalMs: 2_000 }),
    ).toBe(700);
  });

  it("never spins: a change already due waits the minimum, and never beyond the interval", () => {
    expect(
      decideNextStepDelay({ nowMs, nextChangeAt: new Date(nowMs - 10), intervalMs: 2_000 }),
    ).toBe(250);
    expect(
      decideNextStepDelay({ nowMs, nextChangeAt: new Date(nowMs + 50), intervalMs: 2_000 }),
    ).toBe(250);
    // An interval shorter than the minimum wins: the user asked for it.
    expect(
      decideNextStepDelay({ nowMs, nextChangeAt: new Date(nowMs - 10), intervalMs: 100 }),
    ).toBe(100);
  });
});
