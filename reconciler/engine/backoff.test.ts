import { describe, expect, it } from "vitest";
import { backoffDelayMs } from "./backoff.js";

describe("backoffDelayMs", () => {
  const policy = { baseMs: 1_000, maxMs: 60_000 };

  it("doubles per attempt within its jitter band", () => {
    expect(backoffDelayMs(1, policy, () => 0)).toBe(500);
    expect(backoffDelayMs(1, policy, () => 1)).toBe(1_000);
    expect(backoffDelayMs(3, policy, () => 0)).toBe(2_000);
    expect(backoffDelayMs(3, policy, () => 1)).toBe(4_000);
  });

  it("never exceeds the maximum, even after very many attempts", () => {
    for (const attempt of [7, 10, 100, 10_000]) {
      expect(backoffDelayMs(attempt, policy, () => 1)).toBe(60_000);
      expect(backoffDelayMs(attempt, policy, () => 0)).toBe(30_000);
    }
  });

  it("spreads retries (jitter)", () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelayMs(4, policy)));
    expect(delays.size).toBeGreaterThan(10);
  });
});
