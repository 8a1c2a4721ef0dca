import { describe, expect, it } from "vitest";
import type { DesiredReason } from "@/core/desired/reasons.js";
import { liveReasons } from "./pins.js";

const NOW = new Date("2026-01-01T00:00:00Z");
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs);
const ref = {
  chainId: 1,
  contract: "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
  transactionHash: `0x${"1".repeat(64)}`,
  blockNumber: 2n,
  eventId: "e2",
} as const;
const confirmed: DesiredReason = { kind: "confirmed", ...ref };
const demoted = (untilMs: number): DesiredReason => ({
  kind: "demoted",
  ...ref,
  until: at(untilMs),
  unregisteredAt: at(-1_000),
  unregisterSource: "chain",
  unregisterId: "e9",
});
const optimistic = (ms: number): DesiredReason => ({ kind: "optimistic", expiresAt: at(ms) });

describe("liveReasons: the last step's reasons, corrected to now", () => {
  it.each<[string, DesiredReason[], Date | undefined, DesiredReason[]]>([
    ["chain reasons stay", [confirmed], undefined, [confirmed]],
    ["a demotion still running stays", [demoted(1)], undefined, [demoted(1)]],
    [
      "a demotion that ran out goes, exactly at its end",
      [confirmed, demoted(0)],
      undefined,
      [confirmed],
    ],
    [
      "the stored optimistic reason is replaced by the uploads' live one",
      [optimistic(5)],
      at(9),
      [optimistic(9)],
    ],
    ["an upload the step has not seen yet counts", [], at(9), [optimistic(9)]],
    [
      "an expired upload does not, even if the step still had it",
      [confirmed, optimistic(5)],
      at(0),
      [confirmed],
    ],
    ["nothing stored, nothing uploaded: not desired", [], undefined, []],
  ])("%s", (_name, stored, until, expected) => {
    expect(liveReasons(stored, until, NOW)).toEqual(expected);
  });
});
