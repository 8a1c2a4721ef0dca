import { describe, expect, it } from "vitest";
import {
  ABSENT,
  isIllegal,
  isPinStatus,
  PIN_EVENTS,
  PIN_STATUSES,
  type PinEvent,
  type PinState,
  transition,
} from "./pin-status.js";

// The expected machine, written independently of the implementation's table: one line per
// current state, one cell per event in PIN_EVENTS order; "-" is illegal.
const EVENTS_ORDER: readonly PinEvent[] = [
  "want",
  "unwant",
  "release",
  "dispatch_pin",
  "pin_ok",
  "pin_error",
  "pin_give_up",
  "adopt",
  "dispatch_unpin",
  "unpin_ok",
  "unpin_error",
  "lost",
  "recover",
  "record_owned",
  "disown",
];
const EXPECTED: Record<PinState, string> = {
  //           want     unwant       release  d_pin   pin_ok pin_err pin_give adopt  d_unpin   unpin_ok unpin_err    lost     recover      record_owned disown
  absent:
    "   queued   absent       absent   -       -      -       -        pinned -         -        -            -        -            pinned -",
  queued:
    "   queued   unpin_queued unpinned pinning -      -       -        pinned -         -        -            queued   queued       pinned -",
  pinning:
    "  pinning  unpin_queued -        -       pinned queued  failed   pinned -         -        -            pinning  queued       pinned -",
  pinned:
    "   pinned   unpin_queued unpinned -       pinned -       -        pinned -         -        -            queued   pinned       pinned -",
  failed:
    "   failed   unpin_queued unpinned pinning -      -       -        pinned -         -        -            failed   failed       pinned -",
  unpin_queued:
    "queued unpin_queued unpinned -       -      -       -        -      unpinning -        -            unpinned unpin_queued pinned -",
  unpinning:
    "queued    unpinning    -        -       -      -       -        -      -         unpinned unpin_queued unpinning unpin_queued queued unpinned",
  unpinned:
    " queued   unpinned     unpinned -       -      -       -        pinned -         unpinned -            unpinned unpinned     pinned -",
};

const STATES: readonly PinState[] = [ABSENT, ...PIN_STATUSES];

describe("transition", () => {
  it("lists every event exactly once in the expected table", () => {
    expect([...EVENTS_ORDER].sort()).toEqual([...PIN_EVENTS].sort());
  });

  const cases = STATES.flatMap((from) => {
    const cells = EXPECTED[from].trim().split(/\s+/);
    return EVENTS_ORDER.map((event, i) => ({ from, event, expected: cells[i] }));
  });

  it("has an expectation for all (state, event) pairs", () => {
    expect(cases).toHaveLength(STATES.length * PIN_EVENTS.length);
    for (const c of cases) expect(c.expected, `${c.from} × ${c.event}`).toBeDefined();
  });

  it.each(cases)("$from × $event → $expected", ({ from, event, expected }) => {
    const result = transition(from, event);
    if (expected === "-") {
      expect(isIllegal(result)).toBe(true);
      expect(result).toEqual({ illegal: true, from, event });
    } else {
      expect(result).toBe(expected);
    }
  });

  it("never leaves a state without a way to pinned (want) and a way out of wanting (unwant/release)", () => {
    for (const from of PIN_STATUSES) {
      // Drive with want, dispatch_pin, pin_ok (and recover for in-flight unpins) until stable.
      let state: PinState = from;
      for (let i = 0; i < 5 && state !== "pinned" && state !== "failed"; i++) {
        for (const event of [
          "want",
          "dispatch_unpin",
          "unpin_ok",
          "dispatch_pin",
          "pin_ok",
        ] as const) {
          const next = transition(state, event);
          if (!isIllegal(next)) state = next;
        }
      }
      expect(["pinned", "failed"], `from ${from}`).toContain(state);
      const out = transition(from, "unwant");
      expect(isIllegal(out), `unwant from ${from}`).toBe(false);
    }
  });

  it("gives every in-flight status a recovery that is not in flight", () => {
    expect(transition("pinning", "recover")).toBe("queued");
    expect(transition("unpinning", "recover")).toBe("unpin_queued");
  });

  it("checks statuses at run time", () => {
    for (const status of PIN_STATUSES) expect(isPinStatus(status)).toBe(true);
    expect(isPinStatus("absent")).toBe(false);
    expect(isPinStatus("pin_error")).toBe(false);
    expect(isPinStatus(3)).toBe(false);
  });
});
