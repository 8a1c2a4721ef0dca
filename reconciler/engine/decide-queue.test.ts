import { describe, expect, it } from "vitest";
import type { DesiredReasonKind } from "@/core/desired/reasons.js";
import type { LedgerChange } from "@/db/ledger/ledger.js";
import type { PinStatus } from "@/db/ledger/pin-status.js";
import {
  decideDesiredChange,
  decideRecoverInFlight,
  decideRelease,
  decideSweepExtra,
  decideSweepMissing,
  decideSweepRecovery,
  mayHoldQuasarPin,
  unwantedCids,
} from "./decide-queue.js";

describe("decideDesiredChange", () => {
  const reasons = (kinds: DesiredReasonKind[]) => kinds.map((kind) => ({ kind }));
  it.each([
    {
      change: { cid: "c", desired: true, reasons: reasons(["confirmed", "pending", "confirmed"]) },
      event: "want",
      decision: "queue",
      reason: "desired: confirmed, pending",
    },
    {
      change: { cid: "c", desired: true, reasons: reasons([]) },
      event: "want",
      decision: "queue",
      reason: "desired: reason unknown",
    },
    {
      change: { cid: "c", desired: false, reasons: reasons([]) },
      event: "unwant",
      decision: "unpin",
      reason: "no longer desired",
    },
  ])("$reason", ({ change, event, decision, reason }) => {
    expect(decideDesiredChange(change, ["b1", "b2"])).toEqual(
      ["b1", "b2"].map((backendId) => ({
        backendId,
        cid: "c",
        event,
        log: { decision, reason, outcome: "ok" },
      })),
    );
  });
});

describe("mayHoldQuasarPin", () => {
  it.each<{ owned: boolean; status: PinStatus; holds: boolean }>([
    { owned: true, status: "pinned", holds: true },
    { owned: false, status: "pinning", holds: true },
    { owned: false, status: "pinned", holds: false },
    { owned: false, status: "queued", holds: false },
    { owned: true, status: "failed", holds: true },
  ])("owned $owned, $status: $holds", ({ owned, status, holds }) => {
    expect(mayHoldQuasarPin({ owned, status })).toBe(holds);
  });
});

describe("decideRelease", () => {
  const change = (backendId: string, cid: string, event: LedgerChange["event"]): LedgerChange => ({
    backendId,
    cid,
    event,
    log: { decision: event === "want" ? "queue" : "unpin", reason: "r", outcome: "ok" },
  });
  it("keeps unwants Quasar may hold, releases the others, leaves other events alone", () => {
    const changes = [
      change("b1", "c1", "unwant"),
      change("b2", "c1", "unwant"),
      change("b1", "c2", "want"),
      change("b1", "c3", "unwant"),
    ];
    expect(unwantedCids(changes)).toEqual(["c1", "c3"]);
    const held = new Set(["b1 c1"]);
    const decided = decideRelease(changes, (b, c) => held.has(`${b} ${c}`));
    expect(decided.map((c) => `${c.backendId} ${c.cid} ${c.event} ${c.log?.decision}`)).toEqual([
      "b1 c1 unwant unpin",
      "b2 c1 release skip_foreign",
      "b1 c2 want queue",
      "b1 c3 release skip_foreign",
    ]);
  });
});

describe("decideSweepMissing", () => {
  it.each<{ status: PinStatus | undefined; event: string; decision: string }>([
    { status: "pinned", event: "lost", decision: "requeue" },
    { status: undefined, event: "want", decision: "queue" },
    { status: "queued", event: "want", decision: "queue" },
    { status: "failed", event: "want", decision: "queue" },
    { status: "unpinned", event: "want", decision: "queue" },
  ])("row $status: $event", ({ status, event, decision }) => {
    const change = decideSweepMissing({
      backendId: "b1",
      cid: "c",
      row: status === undefined ? undefined : { status },
    });
    expect(change.event).toBe(event);
    expect(change.log?.decision).toBe(decision);
  });
});

describe("decideSweepRecovery", () => {
  it.each<{ status: PinStatus | undefined; requeued: boolean }>([
    { status: "pinned", requeued: true },
    { status: "queued", requeued: false },
    { status: "pinning", requeued: false },
    { status: "failed", requeued: false },
    { status: undefined, requeued: false },
  ])("row $status: requeued $requeued", ({ status, requeued }) => {
    const change = decideSweepRecovery({
      backendId: "b1",
      cid: "c",
      row: status === undefined ? undefined : { status },
    });
    expect(change !== undefined).toBe(requeued);
    if (change) {
      expect(change.event).toBe("lost");
      expect(change.log?.reason).toMatch(/recover/);
    }
  });
});

describe("decideSweepExtra", () => {
  const sweepStartedAt = new Date("2025-01-01T00:01:00Z");
  const before = new Date("2025-01-01T00:00:00Z");
  it.each<{
    name: string;
    row: { owned: boolean; status: PinStatus; updated_at: Date } | undefined;
    unpins: boolean;
  }>([
    { name: "no ledger row (foreign)", row: undefined, unpins: false },
    {
      name: "not owned",
      row: { owned: false, status: "pinned", updated_at: before },
      unpins: false,
    },
    {
      name: "owned and pinned before the sweep",
      row: { owned: true, status: "pinned", updated_at: before },
      unpins: true,
    },
    {
      name: "owned, changed when the sweep began",
      row: { owned: true, status: "pinned", updated_at: sweepStartedAt },
      unpins: false,
    },
    {
      name: "owned, already on its way out",
      row: { owned: true, status: "unpin_queued", updated_at: before },
      unpins: false,
    },
    {
      name: "owned and failed before the sweep",
      row: { owned: true, status: "failed", updated_at: before },
      unpins: true,
    },
  ])("$name: unpins $unpins", ({ row, unpins }) => {
    const change = decideSweepExtra({ backendId: "b1", cid: "c", row, sweepStartedAt });
    expect(change?.event).toBe(unpins ? "unwant" : undefined);
  });
});

describe("decideRecoverInFlight", () => {
  it.each<PinStatus>(["pinning", "unpinning"])("%s goes back to its queue", (status) => {
    expect(decideRecoverInFlight({ backend_id: "b1", cid: "c", status })).toEqual({
      backendId: "b1",
      cid: "c",
      event: "recover",
      expect: status,
      log: { decision: "recover", reason: "in flight when the reconciler stopped", outcome: "ok" },
    });
  });
});
