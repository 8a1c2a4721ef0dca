import type { DesiredChange } from "@/db/desired/index.js";
import type { LedgerChange, LedgerRow } from "@/db/ledger/ledger.js";
import { type PinStatus, WANTED_STATUSES } from "@/db/ledger/pin-status.js";

/**
 * Which ledger work a desired-set change or a sweep finding becomes, per backend: queued for a
 * pin, queued for an unpin, released without a command (a pin Quasar never made), or left
 * alone. Pure: the engine reads the rows and applies the changes.
 */

/** One desired-set change becomes the same event on every backend: want (queue) or unwant. */
export function decideDesiredChange(
  change: Pick<DesiredChange, "cid" | "desired"> & {
    reasons: readonly Pick<DesiredChange["reasons"][number], "kind">[];
  },
  backendIds: readonly string[],
): LedgerChange[] {
  const reason = change.desired
    ? `desired: ${[...new Set(change.reasons.map((r) => r.kind))].join(", ") || "reason unknown"}`
    : "no longer desired";
  return backendIds.map((backendId) => ({
    backendId,
    cid: change.cid,
    event: change.desired ? "want" : "unwant",
    log: { decision: change.desired ? "queue" : "unpin", reason, outcome: "ok" },
  }));
}

/** The CIDs whose ledger rows `decideRelease` needs: those with an unwant among `changes`. */
export function unwantedCids(changes: readonly LedgerChange[]): string[] {
  return [...new Set(changes.filter((c) => c.event === "unwant").map((c) => c.cid))];
}

/**
 * A row whose pin Quasar may hold: one it created (owned), or one whose pin command may be
 * running now (pinning) and whose pin would then be Quasar's.
 */
export function mayHoldQuasarPin(row: Pick<LedgerRow, "owned" | "status">): boolean {
  return row.owned || row.status === "pinning";
}

/**
 * An unwant for a pin Quasar may hold stays an unwant (an unpin command follows); any other
 * becomes a release: the ledger lets go and nothing on the backend is touched (skip_foreign).
 * `mayHold` answers for a (backend, cid), from `mayHoldQuasarPin` over the rows read.
 */
export function decideRelease(
  changes: readonly LedgerChange[],
  mayHold: (backendId: string, cid: string) => boolean,
): LedgerChange[] {
  return changes.map((c) => {
    if (c.event !== "unwant" || mayHold(c.backendId, c.cid)) return c;
    return {
      ...c,
      event: "release",
      log: {
        decision: "skip_foreign",
        reason: "no longer desired; not pinned by Quasar",
        outcome: "ok",
      },
    };
  });
}

/**
 * Sweep: a desired CID missing from the backend's listing. A row the ledger holds as pinned
 * was lost (requeued); anything else is queued.
 */
export function decideSweepMissing(params: {
  backendId: string;
  cid: string;
  row: Pick<LedgerRow, "status"> | undefined;
}): LedgerChange {
  const { backendId, cid, row } = params;
  if (row?.status === "pinned") {
    return {
      backendId,
      cid,
      event: "lost",
      log: {
        decision: "requeue",
        reason: "unexpectedly unpinned: missing from the backend",
        outcome: "ok",
      },
    };
  }
  return {
    backendId,
    cid,
    event: "want",
    log: { decision: "queue", reason: "desired, missing from the backend (sweep)", outcome: "ok" },
  };
}

/**
 * Sweep: a desired CID the backend lists, but with a copy it reports failed or lost (IPFS
 * Cluster's pin_error or unexpectedly_unpinned on some peer). A pinned row is requeued, and
 * the next pin repairs it; rows already queued or failing are on their way. Undefined: nothing.
 */
export function decideSweepRecovery(params: {
  backendId: string;
  cid: string;
  row: Pick<LedgerRow, "status"> | undefined;
}): LedgerChange | undefined {
  const { backendId, cid, row } = params;
  if (row?.status !== "pinned") return undefined;
  return {
    backendId,
    cid,
    event: "lost",
    log: {
      decision: "requeue",
      reason: "a copy failed or was lost on the backend: pinning again to recover it",
      outcome: "ok",
    },
  };
}

/**
 * Sweep: a listed pin that is not desired. Unpinned only when Quasar created it, its row is
 * unchanged since before the sweep began (an upload recorded meanwhile may not be in the
 * desired set yet) and still wanted; foreign pins are never touched. Undefined: left alone.
 */
export function decideSweepExtra(params: {
  backendId: string;
  cid: string;
  row: Pick<LedgerRow, "owned" | "status" | "updated_at"> | undefined;
  sweepStartedAt: Date;
}): LedgerChange | undefined {
  const { backendId, cid, row } = params;
  if (!row?.owned || row.updated_at.getTime() >= params.sweepStartedAt.getTime()) return undefined;
  if (!(WANTED_STATUSES as readonly PinStatus[]).includes(row.status)) return undefined;
  return {
    backendId,
    cid,
    event: "unwant",
    log: { decision: "unpin", reason: "not desired, still pinned (sweep)", outcome: "ok" },
  };
}

/** At start: a command a crash left in flight goes back to its queue (pin and unpin are idempotent). */
export function decideRecoverInFlight(row: {
  backend_id: string;
  cid: string;
  status: PinStatus;
}): LedgerChange {
  return {
    backendId: row.backend_id,
    cid: row.cid,
    event: "recover",
    expect: row.status,
    log: { decision: "recover", reason: "in flight when the reconciler stopped", outcome: "ok" },
  };
}

/**
 * Sweep: a CID the desired set holds again while its unpin still waits (a step that could not
 * hand out its `want`). The release is cancelled: the row goes back to the pin queue.
 */
export function decideCancelRelease(params: { backendId: string; cid: string }): LedgerChange {
  return {
    backendId: params.backendId,
    cid: params.cid,
    event: "want",
    log: {
      decision: "queue",
      reason: "desired again while its unpin waited (sweep): release cancelled",
      outcome: "ok",
    },
  };
}
