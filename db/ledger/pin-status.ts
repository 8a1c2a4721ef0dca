/**
 * The one state machine of a (backend, cid) pair. Every status change in the ledger is
 * computed by `transition` and nowhere else, so no branch can leave a pin stuck in a state
 * nothing drives out of (the Point Network bug in REFERENCE.md §3).
 *
 *   absent ──want──▶ queued ──dispatch_pin──▶ pinning ──pin_ok──▶ pinned
 *                      ▲  ▲                     │ │                 │
 *                      │  └──────pin_error──────┘ └──pin_give_up──▶ failed (slow retry)
 *                      └──────────────lost (sweep: unpinned by hand)──┘
 *   pinned ──unwant──▶ unpin_queued ──dispatch_unpin──▶ unpinning ──unpin_ok / disown──▶ unpinned
 *                          ▲                                 │
 *                          └───────────unpin_error───────────┘
 *
 * `owned` (whether Quasar created the pin) is a separate column: the engine sends `unwant`
 * only for pins Quasar may have created and `release` for the others, which never issues an
 * unpin command.
 */

/** Every status a ledger row can hold. */
export const PIN_STATUSES = [
  "queued",
  "pinning",
  "pinned",
  "failed",
  "unpin_queued",
  "unpinning",
  "unpinned",
] as const;
export type PinStatus = (typeof PIN_STATUSES)[number];

/** A pair with no ledger row yet. */
export const ABSENT = "absent" as const;
export type PinState = PinStatus | typeof ABSENT;

export function isPinStatus(value: unknown): value is PinStatus {
  return typeof value === "string" && (PIN_STATUSES as readonly string[]).includes(value);
}

/** Everything that can happen to a (backend, cid) pair. */
export const PIN_EVENTS = [
  /** The CID is desired on this backend. */
  "want",
  /** The CID is no longer desired and Quasar may hold a pin there: unpin it. */
  "unwant",
  /** The CID is no longer desired and Quasar never pinned it (or adopted a foreign pin): forget it, no command. */
  "release",
  /** A worker is about to send the pin command (intent recorded before the command). */
  "dispatch_pin",
  "pin_ok",
  /** The pin failed but its deadline has not passed: retry with backoff. */
  "pin_error",
  /** The pin failed past its deadline: failed, retried only every QUASAR_FAILED_RETRY_INTERVAL. */
  "pin_give_up",
  /** The backend already held a recursive pin Quasar did not create: keep it, never unpin it. */
  "adopt",
  /** A worker is about to send the unpin command. */
  "dispatch_unpin",
  "unpin_ok",
  "unpin_error",
  /** The sweep found a pinned CID missing from the backend (IPFS Cluster's unexpectedly_unpinned). */
  "lost",
  /** Start-up after a crash, or a command abandoned at shutdown: re-drive the in-flight command. */
  "recover",
  /** The API pinned uploaded content itself and records that Quasar owns the pin. */
  "record_owned",
  /**
   * About to unpin, the worker found the pin carrying another name: someone pinned the CID
   * again since Quasar did. Their pin stays; Quasar forgets its own (owned = false).
   */
  "disown",
] as const;
export type PinEvent = (typeof PIN_EVENTS)[number];

/** Returned (never thrown) when an event does not apply to a status: the caller decides. */
export type IllegalTransition = { illegal: true; from: PinState; event: PinEvent };

const X = undefined;

/**
 * The full table: rows are current states, columns events; `undefined` marks an illegal pair.
 * Written out in full on purpose, so adding a status or an event is a type error until every
 * cell is decided.
 */
const TABLE: Record<PinState, Record<PinEvent, PinState | undefined>> = {
  absent: {
    want: "queued",
    unwant: "absent",
    release: "absent",
    dispatch_pin: X,
    pin_ok: X,
    pin_error: X,
    pin_give_up: X,
    adopt: "pinned",
    dispatch_unpin: X,
    unpin_ok: X,
    unpin_error: X,
    lost: X,
    recover: X,
    record_owned: "pinned",
    disown: X,
  },
  queued: {
    want: "queued",
    unwant: "unpin_queued",
    release: "unpinned",
    dispatch_pin: "pinning",
    pin_ok: X,
    pin_error: X,
    pin_give_up: X,
    adopt: "pinned",
    dispatch_unpin: X,
    unpin_ok: X,
    unpin_error: X,
    lost: "queued",
    recover: "queued",
    record_owned: "pinned",
    disown: X,
  },
  pinning: {
    want: "pinning",
    // The pin in flight may still land: unpin after it (the worker never overlaps commands on one CID).
    unwant: "unpin_queued",
    release: X,
    dispatch_pin: X,
    pin_ok: "pinned",
    pin_error: "queued",
    pin_give_up: "failed",
    adopt: "pinned",
    dispatch_unpin: X,
    unpin_ok: X,
    unpin_error: X,
    lost: "pinning",
    recover: "queued",
    record_owned: "pinned",
    disown: X,
  },
  pinned: {
    want: "pinned",
    unwant: "unpin_queued",
    release: "unpinned",
    dispatch_pin: X,
    pin_ok: "pinned",
    pin_error: X,
    pin_give_up: X,
    adopt: "pinned",
    dispatch_unpin: X,
    unpin_ok: X,
    unpin_error: X,
    lost: "queued",
    recover: "pinned",
    record_owned: "pinned",
    disown: X,
  },
  failed: {
    want: "failed",
    unwant: "unpin_queued",
    release: "unpinned",
    dispatch_pin: "pinning",
    pin_ok: X,
    pin_error: X,
    pin_give_up: X,
    adopt: "pinned",
    dispatch_unpin: X,
    unpin_ok: X,
    unpin_error: X,
    lost: "failed",
    recover: "failed",
    record_owned: "pinned",
    disown: X,
  },
  unpin_queued: {
    // The unpin has not been sent (or failed, leaving the pin): pinning again is idempotent and cheap.
    want: "queued",
    unwant: "unpin_queued",
    // It turned out Quasar never owned the pin (adopted while an unpin was queued): forget it.
    release: "unpinned",
    dispatch_pin: X,
    pin_ok: X,
    pin_error: X,
    pin_give_up: X,
    adopt: X,
    dispatch_unpin: "unpinning",
    unpin_ok: X,
    unpin_error: X,
    lost: "unpinned",
    recover: "unpin_queued",
    record_owned: "pinned",
    disown: X,
  },
  unpinning: {
    // The unpin in flight may remove the pin: pin again after it.
    want: "queued",
    unwant: "unpinning",
    release: X,
    dispatch_pin: X,
    pin_ok: X,
    pin_error: X,
    pin_give_up: X,
    adopt: X,
    dispatch_unpin: X,
    unpin_ok: "unpinned",
    unpin_error: "unpin_queued",
    lost: "unpinning",
    recover: "unpin_queued",
    record_owned: "queued",
    disown: "unpinned",
  },
  unpinned: {
    want: "queued",
    unwant: "unpinned",
    release: "unpinned",
    dispatch_pin: X,
    pin_ok: X,
    pin_error: X,
    pin_give_up: X,
    adopt: "pinned",
    dispatch_unpin: X,
    unpin_ok: "unpinned",
    unpin_error: X,
    lost: "unpinned",
    recover: "unpinned",
    record_owned: "pinned",
    disown: X,
  },
};

/** The next state of a pair, or IllegalTransition. Pure; the only place statuses change. */
export function transition(current: PinState, event: PinEvent): PinState | IllegalTransition {
  const next = TABLE[current][event];
  return next === undefined ? { illegal: true, from: current, event } : next;
}

export function isIllegal(result: PinState | IllegalTransition): result is IllegalTransition {
  return typeof result === "object";
}

/** Statuses in which the CID is meant to be on the backend (counts towards desired/degraded). */
export const WANTED_STATUSES = [
  "queued",
  "pinning",
  "pinned",
  "failed",
] as const satisfies readonly PinStatus[];
/** Statuses with a command in flight; re-driven with `recover` at start-up. */
export const IN_FLIGHT_STATUSES = ["pinning", "unpinning"] as const satisfies readonly PinStatus[];
