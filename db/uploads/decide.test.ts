import { describe, expect, it } from "vitest";
import type { PinStatus } from "../ledger/pin-status.js";
import {
  confirmedPinChange,
  decideUpload,
  failedPinChange,
  optimisticExpiry,
  UPLOAD_PIN_GRACE_MS,
} from "./decide.js";

const NOW = new Date("2026-01-01T00:00:00Z");
const upload = (pinnedOnBackend: boolean) => ({
  backendId: "helia-1",
  cid: "bafkreic75tvwn76in44nsutynrwws3dzyln4eoo5j2i3izzj245cp62x5e",
  now: NOW,
  pinnedOnBackend,
});

describe("decideUpload: what an upload records on its backend's ledger", () => {
  // [ledger row before (status, owned) or none, backend already pins it] → outcome, event
  it.each<
    [string, { status: PinStatus; owned: boolean } | undefined, boolean, string, string | undefined]
  >([
    ["no row, not pinned: the intent", undefined, false, "pin", "want"],
    ["no row, pinned by someone: adopt", undefined, true, "adopted", "adopt"],
    [
      "queued by the reconciler, not pinned: the intent",
      { status: "queued", owned: false },
      false,
      "pin",
      "want",
    ],
    [
      "the reconciler pins it now, pin there: its outcome decides",
      { status: "pinning", owned: true },
      true,
      "in_flight",
      undefined,
    ],
    [
      "the reconciler pins it now, no pin yet: the intent",
      { status: "pinning", owned: false },
      false,
      "pin",
      "want",
    ],
    [
      "ours and pinned: record owned",
      { status: "pinned", owned: true },
      true,
      "owned",
      "record_owned",
    ],
    [
      "ours, unpin queued, still pinned: record owned cancels it",
      { status: "unpin_queued", owned: true },
      true,
      "owned",
      "record_owned",
    ],
    [
      "ours once, unpinned since, pinned by someone: adopt",
      { status: "unpinned", owned: true },
      true,
      "adopted",
      "adopt",
    ],
    ["pinned, not ours: adopt", { status: "pinned", owned: false }, true, "adopted", "adopt"],
    [
      "ours and pinned on the ledger, gone from the backend: the intent",
      { status: "pinned", owned: true },
      false,
      "pin",
      "want",
    ],
  ])("%s", (_name, row, pinnedOnBackend, outcome, event) => {
    const decided = decideUpload(upload(pinnedOnBackend), row);
    expect(decided.outcome).toBe(outcome);
    expect(decided.change?.event).toBe(event);
    if (decided.change) {
      expect(decided.change).toMatchObject({ backendId: "helia-1", cid: upload(false).cid });
    }
  });

  it("an intent is owned and waits the grace period the API has to pin it itself", () => {
    expect(decideUpload(upload(false), undefined).change?.set).toEqual({
      owned: true,
      next_attempt_at: new Date(NOW.getTime() + UPLOAD_PIN_GRACE_MS),
    });
  });

  it("an adopted pin is never owned: Quasar must never unpin it", () => {
    expect(decideUpload(upload(true), undefined).change?.set).toMatchObject({ owned: false });
  });
});

describe("the API's follow-ups of its own pin", () => {
  const pin = { backendId: "helia-1", cid: upload(false).cid };
  it("a confirmed pin is recorded as Quasar's", () => {
    expect(confirmedPinChange(pin)).toMatchObject({
      event: "record_owned",
      set: { owned: true },
      log: { decision: "record_owned", outcome: "ok" },
    });
  });
  it("a failed pin goes to the reconciler's queue now, with the error", () => {
    expect(failedPinChange({ ...pin, now: NOW, error: "boom" })).toMatchObject({
      event: "want",
      set: { next_attempt_at: NOW, last_error: "boom" },
      log: { decision: "pin", outcome: "error", error: "boom" },
    });
  });
});

describe("optimisticExpiry: desired while now < created + TTL", () => {
  it.each([
    [0, NOW.getTime()],
    [1_000, NOW.getTime() + 1_000],
    [14 * 24 * 3_600_000, NOW.getTime() + 14 * 24 * 3_600_000],
  ])("TTL %i ms", (ttl, expected) => {
    expect(optimisticExpiry(NOW, ttl).getTime()).toBe(expected);
  });
});
