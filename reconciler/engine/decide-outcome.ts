import { type PinListing, QUASAR_PIN_NAME } from "@/backends/pin-backend.js";
import type { ChangeResult, LedgerChange } from "@/db/ledger/ledger.js";

/**
 * What a command's successful answer means for the ledger, and what a pin found on the
 * backend before the command means: Quasar's own, or someone else's that Quasar must never
 * remove. Pure: the worker asks the backend and writes the change.
 */

/** Whether to look for someone else's pin before pinning (one getPin per new pin). */
export function looksForForeignPin(row: { owned: boolean }, foreignPinCheck: boolean): boolean {
  return !row.owned && foreignPinCheck;
}

/**
 * Before pinning: a pin already on the backend, not named by Quasar, is adopted (kept,
 * never unpinned). A direct pin (someone else holds the root block only) is adopted too: the
 * caller still pins the whole DAG, and Kubo's recursive pin then takes the direct one's
 * place, so unpinning it would take the other user's pin with it. Undefined: go on and pin.
 */
export function decideAdoption(params: {
  backendId: string;
  cid: string;
  found: PinListing | undefined;
}): LedgerChange | undefined {
  const { found } = params;
  if (!found || (!found.direct && found.name === QUASAR_PIN_NAME)) return undefined;
  return {
    backendId: params.backendId,
    cid: params.cid,
    expect: "pinning",
    event: "adopt",
    set: { owned: false, attempts: 0, last_error: null },
    log: {
      decision: "adopt",
      reason: found.direct
        ? "pinned directly by someone else: pinned recursively, never unpinned"
        : "already pinned on the backend, not by Quasar",
      outcome: "ok",
    },
  };
}

/** The pin landed, by Quasar's own pin command or by a CAR copied from another backend. */
export function decidePinned(params: {
  backendId: string;
  cid: string;
  /** Undefined: pinned by the backend itself; else the label of the backend copied from. */
  copiedFrom?: string;
  /** Copies the backend reported once the pin held (IPFS Cluster); undefined: one. */
  copies?: number;
}): LedgerChange {
  const { copiedFrom } = params;
  return {
    backendId: params.backendId,
    cid: params.cid,
    expect: "pinning",
    event: "pin_ok",
    set: { owned: true, attempts: 0, last_error: null, copies: params.copies ?? null },
    log:
      copiedFrom === undefined
        ? { decision: "pin", reason: "desired", outcome: "ok" }
        : { decision: "copy", reason: `fetched as a CAR from ${copiedFrom}`, outcome: "ok" },
  };
}

/**
 * Before unpinning: a daemon keeps one pin per CID, so whoever pinned it again after Quasar
 * did shares that pin and unpinning would take it from them. Their pin carries their name (or
 * none): disowned and left in place. Undefined: go on and unpin.
 */
export function decideDisown(params: {
  backendId: string;
  cid: string;
  found: PinListing | undefined;
}): LedgerChange | undefined {
  const { found } = params;
  if (found === undefined || found.name === QUASAR_PIN_NAME) return undefined;
  return {
    backendId: params.backendId,
    cid: params.cid,
    expect: "unpinning",
    event: "disown",
    set: { owned: false, attempts: 0, last_error: null },
    log: {
      decision: "skip_foreign",
      reason: `pinned again since Quasar pinned it (name ${JSON.stringify(found.name ?? "")}): left in place`,
      outcome: "ok",
    },
  };
}

/** The unpin went through. */
export function decideUnpinned(params: { backendId: string; cid: string }): LedgerChange {
  return {
    backendId: params.backendId,
    cid: params.cid,
    expect: "unpinning",
    event: "unpin_ok",
    log: { decision: "unpin", reason: "no longer desired", outcome: "ok" },
  };
}

/**
 * After a batch of outcomes is written: a pin that landed after its CID became unwanted
 * mid-flight (its pin_ok found the row already in unpin_queued) is still Quasar's. The
 * follow-up changes record that ownership so the queued unpin is allowed to remove it.
 */
export function decideLatePinOwnership(
  batch: readonly LedgerChange[],
  results: readonly ChangeResult[],
): LedgerChange[] {
  const notes: LedgerChange[] = [];
  results.forEach((result, i) => {
    const change = batch[i];
    if (
      change !== undefined &&
      !result.applied &&
      result.why === "stale" &&
      change.event === "pin_ok" &&
      result.from === "unpin_queued"
    ) {
      notes.push({
        backendId: change.backendId,
        cid: change.cid,
        event: "unwant",
        expect: "unpin_queued",
        set: { owned: true },
      });
    }
  });
  return notes;
}
