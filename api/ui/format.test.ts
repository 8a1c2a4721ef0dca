import { describe, expect, it } from "vitest";
import { formatBytes, formatDuration, formatTime, show } from "./format.js";

describe("dashboard formats", () => {
  it("durations, times, sizes and unknowns", () => {
    expect([0, 59, 200, 600, 7_500, 273_600].map(formatDuration)).toEqual([
      "0s",
      "59s",
      "3m 20s",
      "10m",
      "2h 5m",
      "3d 4h",
    ]);
    expect(formatTime(new Date("2026-11-30T08:31:05.123Z"))).toBe("2026-11-30 08:31:05 UTC");
    expect([300n, 12_288n, 1_572_864n].map(formatBytes)).toEqual(["300 B", "12.0 KiB", "1.5 MiB"]);
    expect([null, undefined, 0, 5n].map(show)).toEqual(["-", "-", "0", "5"]);
  });
});
