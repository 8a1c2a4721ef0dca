import { CID } from "multiformats/cid";
import { describe, expect, it } from "vitest";
import { QUASAR_PIN_NAME } from "@/backends/pin-backend.js";
import type { ChangeResult, LedgerChange, LedgerRow } from "@/db/ledger/ledger.js";
import {
  decideAdoption,
  decideDisown,
  decideLatePinOwnership,
  decidePinned,
  decideUnpinned,
  looksForForeignPin,
} from "./decide-outcome.js";

const cid = CID.parse("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
const ids = { backendId: "b1", cid: cid.toString() };

describe("looksForForeignPin", () => {
  it.each([
    { owned: false, check: true, looks: true },
    { owned: true, check: true, looks: false },
    { owned: false, check: false, looks: false },
    { owned: true, check: false, looks: false },
  ])("owned $owned, check $check: $looks", ({ owned, check, looks }) => {
    expect(looksForForeignPin({ owned }, check)).toBe(looks);
  });
});

describe("decideAdoption and decideDisown", () => {
  it.each([
    { found: undefined, acts: false },
    { found: { cid, name: QUASAR_PIN_NAME }, acts: false },
    { found: { cid, name: "someone" }, acts: true },
    { found: { cid }, acts: true },
    { found: { cid, name: "" }, acts: true },
  ])("found $found.name: acts $acts", ({ found, acts }) => {
    const adopted = decideAdoption({ ...ids, found });
    const disowned = decideDisown({ ...ids, found });
    expect(adopted !== undefined).toBe(acts);
    expect(disowned !== undefined).toBe(acts);
    if (adopted && disowned) {
      // Either way the pin is no longer Quasar's to remove.
      expect(adopted).toMatchObject({ event: "adopt", expect: "pinning", set: { owned: false } });
      expect(adopted.log?.decision).toBe("adopt");
      expect(disowned).toMatchObject({
        event: "disown",
        expect: "unpinning",
        set: { owned: false },
      });
      expect(disowned.log?.decision).toBe("skip_foreign");
      expect(disowned.log?.reason).toContain(JSON.stringify(found?.name ?? ""));
    }
  });
});

describe("decidePinned and decideUnpinned", () => {
  it("a pin by the backend itself is owned", () => {
    expect(decidePinned(ids)).toEqual({
      ...ids,
      expect: "pinning",
      event: "pin_ok",
      set: { owned: true, attempts: 0, last_error: null, copies: null },
      log: { decision: "pin", reason: "desired", outcome: "ok" },
    });
  });

  it("a copy names the backend it came from", () => {
    const change = decidePinned({ ...ids, copiedFrom: "ipfs://127.0.0.1:5001" });
    expect(change.event).toBe("pin_ok");
    expect(change.set?.owned).toBe(true);
    expect(change.log).toEqual({
      decision: "copy",
      reason: "fetched as a CAR from ipfs://127.0.0.1:5001",
      outcome: "ok",
    });
  });

  it("an unpin completes", () => {
    expect(decideUnpinned(ids)).toMatchObject({ expect: "unpinning", event: "unpin_ok" });
  });
});

describe("decideLatePinOwnership", () => {
  const row = {} as LedgerRow;
  const change = (event: LedgerChange["event"], n: number): LedgerChange => ({
    backendId: "b1",
    cid: `c${n}`,
    event,
  });
  it.each<{ name: string; change: LedgerChange; result: ChangeResult; note: boolean }>([
    {
      name: "a pin_ok that found the row unwanted mid-flight",
      change: change("pin_ok", 1),
      result: { applied: false, why: "stale", from: "unpin_queued" },
      note: true,
    },
    {
      name: "a pin_ok that applied",
      change: change("pin_ok", 2),
      result: { applied: true, from: "pinning", to: "pinned", row },
      note: false,
    },
    {
      name: "a pin_ok stale for another reason",
      change: change("pin_ok", 3),
      result: { applied: false, why: "stale", from: "queued" },
      note: false,
    },
    {
      name: "an adopt found unwanted",
      change: change("adopt", 4),
      result: { applied: false, why: "stale", from: "unpin_queued" },
      note: false,
    },
    {
      name: "an illegal pin_ok",
      change: change("pin_ok", 5),
      result: { applied: false, why: "illegal", from: "unpin_queued" },
      note: false,
    },
  ])("$name: note $note", ({ change: c, result, note }) => {
    const notes = decideLatePinOwnership([c], [result]);
    expect(notes).toEqual(
      note
        ? [
            {
              backendId: "b1",
              cid: c.cid,
              event: "unwant",
              expect: "unpin_queued",
              set: { owned: true },
            },
          ]
        : [],
    );
  });
});
