import type { LedgerChange } from "../ledger/ledger.js";
import type { PinStatus } from "../ledger/pin-status.js";

/**
 * The pure rules of an upload: its expiry, and what the ledger of the uploading backend
 * records for it. db/uploads/record.ts applies them; the API, the benches and the tests all
 * record uploads through it.
 */

/** One upload, stored on `backendId` and not yet pinned by the API. */
export type UploadRecord = {
  /** Any spelling of the CID; stored normalised (CIDv1 base32). */
  cid: string;
  /** Bytes stored. */
  size: number | bigint;
  /** The uploader's key id (a short hash), a client address or "anonymous"; never a key. */
  uploader: string;
  /** Backend.id of the backend the content was stored on. */
  backendId: string;
  now: Date;
  /** Whether the backend already holds a recursive pin of `cid` (its getPin, just before). */
  pinnedOnBackend: boolean;
  /** QUASAR_PIN_DEADLINE, for a new pin intent. */
  pinDeadlineMs: number;
};

/**
 * What recording an upload decided for its backend:
 * - `pin`: Quasar's intent to pin (owned, queued) is recorded; the caller pins now and then
 *   confirms (or requeues when the pin fails);
 * - `adopted`: a pin Quasar did not create was already there; recorded as not owned, so it
 *   is never unpinned;
 * - `owned`: Quasar's own pin was already there (an earlier upload or the reconciler);
 * - `in_flight`: the reconciler is pinning it right now and records the outcome itself.
 */
export const UPLOAD_RECORD_OUTCOMES = ["pin", "adopted", "owned", "in_flight"] as const;
export type UploadRecordOutcome = (typeof UPLOAD_RECORD_OUTCOMES)[number];

/**
 * How long a new upload's pin intent waits before the reconciler may take it: the API pins it
 * itself right after recording, so the engine only acts if the API never did. That happens
 * when the API dies in between, and when the record's COMMIT landed but its answer was lost
 * (a session killed or a network cut at that moment): the API answered 503, yet the upload is
 * desired and must be pinned. Short, because an engine pin alongside a slow API pin is
 * harmless (pins are idempotent, and a pin named Quasar's is never adopted as foreign), while
 * a long wait leaves a desired CID pinned nowhere.
 */
export const UPLOAD_PIN_GRACE_MS = 30_000;

/** The reconcile_log reason of an upload's ownership row once the API's pin succeeded. */
export const RECORD_OWNED_REASON = "uploaded and pinned through the API";

/** The one expiry rule: an upload at `created` is desired while now < created + TTL. */
export function optimisticExpiry(created: Date, ttlMs: number): Date {
  return new Date(created.getTime() + ttlMs);
}

/** The part of the backend's ledger row an upload's decision reads. */
export type UploadLedgerRow = { status: PinStatus; owned: boolean };

/**
 * The ledger event of one upload, from the backend's answer and the ledger's current row:
 * - the reconciler is pinning it right now (status pinning): no ledger change when the pin
 *   is already there (its outcome decides), else the intent;
 * - the backend holds a pin the ledger owns: `record_owned` (also cancels a queued unpin);
 * - the backend holds a pin the ledger does not own: `adopt`, owned=false (a foreign pin: the
 *   engine never unpins it, and releases it when the upload expires);
 * - no pin yet: `want` with owned=true, the intent to pin, before the API pins. Its first
 *   attempt waits UPLOAD_PIN_GRACE_MS, so the engine does not pin alongside the API, yet
 *   takes the pin over if the API dies before it confirms.
 */
export function decideUpload(
  upload: Pick<UploadRecord, "backendId" | "cid" | "now" | "pinnedOnBackend">,
  row: UploadLedgerRow | undefined,
): { outcome: UploadRecordOutcome; change?: LedgerChange } {
  const ref = { backendId: upload.backendId, cid: upload.cid };
  if (row?.status === "pinning") {
    return upload.pinnedOnBackend ? { outcome: "in_flight" } : { outcome: "pin", change: intent() };
  }
  const ours = row?.owned === true && row.status !== "unpinned";
  if (upload.pinnedOnBackend && ours) {
    return {
      outcome: "owned",
      change: {
        ...ref,
        event: "record_owned",
        set: { owned: true },
        log: {
          decision: "record_owned",
          reason: "uploaded again; already pinned by Quasar",
          outcome: "ok",
        },
      },
    };
  }
  if (upload.pinnedOnBackend) {
    return {
      outcome: "adopted",
      change: {
        ...ref,
        event: "adopt",
        set: { owned: false, attempts: 0, last_error: null },
        log: {
          decision: "adopt",
          reason: "uploaded through the API, already pinned on the backend, not by Quasar",
          outcome: "ok",
        },
      },
    };
  }
  return { outcome: "pin", change: intent() };

  function intent(): LedgerChange {
    return {
      ...ref,
      event: "want",
      set: {
        owned: true,
        next_attempt_at: new Date(upload.now.getTime() + UPLOAD_PIN_GRACE_MS),
      },
      log: {
        decision: "queue",
        reason: "uploaded through the API: the API pins it",
        outcome: "started",
      },
    };
  }
}

/** A recorded upload's pin, as the API's follow-ups name it (CID normalised). */
export type UploadPinRef = { cid: string; backendId: string };

/** After the API's own pin of a recorded upload succeeded: the row becomes pinned, owned. */
export function confirmedPinChange(pin: UploadPinRef): LedgerChange {
  return {
    backendId: pin.backendId,
    cid: pin.cid,
    event: "record_owned",
    set: { owned: true },
    log: { decision: "record_owned", reason: RECORD_OWNED_REASON, outcome: "ok" },
  };
}

/** After the API's own pin failed: the recorded intent goes to the reconciler's queue now. */
export function failedPinChange(pin: UploadPinRef & { now: Date; error: string }): LedgerChange {
  return {
    backendId: pin.backendId,
    cid: pin.cid,
    // Still wanted: `want` keeps the row queued; the engine takes it at once.
    event: "want",
    set: { next_attempt_at: pin.now, last_error: pin.error },
    log: {
      decision: "pin",
      reason: "the API's pin of an upload failed: left to the reconciler",
      outcome: "error",
      error: pin.error,
    },
  };
}
