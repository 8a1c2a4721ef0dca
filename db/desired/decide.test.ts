import { describe, expect, it } from "vitest";
import type { Evaluation } from "@/core/desired/evaluate.js";
import type { DesiredReason } from "@/core/desired/reasons.js";
import { chainAction, offchainAction, type RegistrationAction } from "@/core/desired/timeline.js";
import type { ChainEvent, Hex } from "@/src/events.js";
import {
  canonicalReasons,
  decideAnswer,
  decideStanding,
  foldEvents,
  foldLimit,
  overlayTail,
  reasonFlags,
} from "./decide.js";

const A: Hex = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const B: Hex = "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const REGISTRY: Hex = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
const CID_1 = "bafkreic75tvwn76in44nsutynrwws3dzyln4eoo5j2i3izzj245cp62x5e";
const CID_2 = "bafkreidlq2zhh7zu7tqz224aj37vup2xi6w2j2vcf4outqa6klo3pb23jm";
const TX: Hex = `0x${"1".repeat(64)}`;

function event(
  block: bigint,
  kind: ChainEvent["kind"],
  fields: Partial<ChainEvent> = {},
): ChainEvent {
  return {
    id: `${String(block).padStart(10, "0")}-${kind}-${fields.cid ?? fields.subject ?? ""}`,
    chainId: 1,
    blockNumber: block,
    blockHash: `0x${"2".repeat(64)}`,
    blockTimestamp: 1_700_000_000n + block * 12n,
    transactionHash: TX,
    logIndex: 0,
    contract: kind === "pin_hash" ? A : REGISTRY,
    kind,
    subject: null,
    rawCid: null,
    cid: null,
    invalidReason: null,
    ...fields,
  };
}

const register = (block: bigint, contract: Hex) => event(block, "register", { subject: contract });
const unregister = (block: bigint, contract: Hex) =>
  event(block, "unregister", { subject: contract });
const pin = (block: bigint, cid: string | null) => event(block, "pin_hash", { cid });
const action = (e: ChainEvent): RegistrationAction =>
  chainAction({ ...e, subject: e.subject as Hex, kind: e.kind as "register" | "unregister" });

describe("foldLimit: what may be folded is final and fully indexed", () => {
  it.each([
    [{ indexedBlock: 10n, finalizedBlock: 8n }, 8n],
    [{ indexedBlock: 5n, finalizedBlock: 8n }, 5n],
    [{ indexedBlock: 7n, finalizedBlock: 7n }, 7n],
    [{ indexedBlock: 0n, finalizedBlock: 0n }, 0n],
  ])("%o → %s", (progress, limit) => {
    expect(foldLimit({ chainId: 1, ...progress })).toBe(limit);
  });
});

describe("foldEvents: rows and re-evaluation keys of a page of final events", () => {
  it("keeps valid PinHashes and named registrations, drops invalid CIDs and subjectless events", () => {
    const folded = foldEvents([
      register(1n, A),
      pin(2n, CID_1),
      pin(3n, null),
      event(4n, "unregister", { subject: null }),
      unregister(5n, B),
      pin(6n, CID_1),
    ]);
    expect(folded.refs.map((r) => [r.cid, r.contract, r.block_number])).toEqual([
      [CID_1, A, 2n],
      [CID_1, A, 6n],
    ]);
    expect(folded.registrations.map((r) => [r.contract, r.action, r.block_number])).toEqual([
      [A, "register", 1n],
      [B, "unregister", 5n],
    ]);
    expect(folded.cids).toEqual([CID_1, CID_1]);
    expect(folded.contracts).toEqual([`1:${A}`, `1:${B}`]);
  });

  it("folds nothing from an empty page", () => {
    expect(foldEvents([])).toEqual({ refs: [], registrations: [], cids: [], contracts: [] });
  });
});

describe("overlayTail: the unfinalized tail in memory", () => {
  it("groups PinHash refs by CID and actions by contract, in order, skipping invalid CIDs", () => {
    const into = { refs: new Map(), actions: new Map() };
    overlayTail(
      [pin(10n, CID_1), register(11n, B), pin(12n, CID_2), pin(13n, CID_1), pin(14n, null)],
      into,
    );
    expect([...into.refs.keys()]).toEqual([CID_1, CID_2]);
    expect(into.refs.get(CID_1)?.map((r: { blockNumber: bigint }) => r.blockNumber)).toEqual([
      10n,
      13n,
    ]);
    expect([...into.actions.keys()]).toEqual([`1:${B}`]);
  });
});

describe("decideStanding: a contract's deciding action against the stored one", () => {
  const reg = action(register(5n, A));
  const unreg = action(unregister(9n, A));
  const offUnreg = offchainAction({
    id: 1n,
    chainId: 1,
    contract: A,
    action: "unregister",
    createdAt: new Date(1_800_000_000_000),
  });
  it.each<[string, RegistrationAction[], bigint, Parameters<typeof decideStanding>[2], unknown]>([
    [
      "new contract, final register",
      [reg],
      10n,
      undefined,
      { write: { standingId: reg.id, standingFinal: true }, moved: true },
    ],
    [
      "unchanged: nothing to write",
      [reg],
      10n,
      { standingId: reg.id, standingFinal: true },
      { moved: false },
    ],
    [
      "register not final yet: written provisional",
      [reg],
      4n,
      undefined,
      { write: { standingId: reg.id, standingFinal: false }, moved: true },
    ],
    [
      "the same register became final: written, not moved",
      [reg],
      10n,
      { standingId: reg.id, standingFinal: false },
      { write: { standingId: reg.id, standingFinal: true }, moved: false },
    ],
    [
      "a non-final unregister does not decide",
      [reg, unreg],
      8n,
      { standingId: reg.id, standingFinal: true },
      { moved: false },
    ],
    [
      "a final unregister moves it",
      [reg, unreg],
      9n,
      { standingId: reg.id, standingFinal: true },
      { write: { standingId: unreg.id, standingFinal: true }, moved: true },
    ],
    [
      "an off-chain unregister is final at once",
      [reg, offUnreg],
      0n,
      { standingId: reg.id, standingFinal: false },
      { write: { standingId: offUnreg.id, standingFinal: true }, moved: true },
    ],
    [
      "a register reorged away: no standing left",
      [],
      10n,
      { standingId: reg.id, standingFinal: false },
      { write: { standingId: null, standingFinal: true }, moved: true },
    ],
    [
      "never registered, nothing stored: a row with no standing",
      [],
      10n,
      undefined,
      { write: { standingId: null, standingFinal: true }, moved: false },
    ],
  ])("%s", (_name, timeline, finalized, before, expected) => {
    expect(decideStanding(timeline, finalized, before)).toEqual(expected);
  });
});

describe("decideAnswer: what one CID's evaluation writes", () => {
  const confirmed: DesiredReason = {
    kind: "confirmed",
    chainId: 1,
    contract: A,
    transactionHash: TX,
    blockNumber: 2n,
    eventId: "e2",
  };
  const optimistic: DesiredReason = { kind: "optimistic", expiresAt: new Date(5_000) };
  const evaluation = (reasons: DesiredReason[]): Evaluation => ({ reasons, nextChangeAt: null });
  const stored = (reasons: DesiredReason[], usesTail = false) => ({
    json: canonicalReasons(reasons),
    usesTail,
  });
  it.each<[string, DesiredReason[], ReturnType<typeof stored> | undefined, boolean, string]>([
    ["not desired, no row: nothing", [], undefined, false, "nothing"],
    ["not desired any more: remove, a change", [], stored([confirmed]), false, "remove+change"],
    ["newly desired: upsert, a change", [confirmed], undefined, false, "upsert+change"],
    ["same reasons: nothing", [confirmed], stored([confirmed]), false, "nothing"],
    [
      "other reasons: upsert, a change",
      [confirmed, optimistic],
      stored([confirmed]),
      false,
      "upsert+change",
    ],
    [
      "same reasons, left the tail: upsert, no change",
      [confirmed],
      stored([confirmed], true),
      false,
      "upsert",
    ],
    [
      "same reasons, entered the tail: upsert, no change",
      [confirmed],
      stored([confirmed]),
      true,
      "upsert",
    ],
  ])("%s", (_name, reasons, before, usesTail, expected) => {
    const decided = decideAnswer(CID_1, evaluation(reasons), before, usesTail);
    const shape = [
      decided.remove ? "remove" : "",
      decided.upsert ? "upsert" : "",
      decided.change ? "change" : "",
    ]
      .filter(Boolean)
      .join("+");
    expect(shape || "nothing").toBe(expected);
    if (decided.upsert) {
      expect(decided.upsert).toMatchObject({ cid: CID_1, reasons, usesTail });
      expect(decided.upsert.json).toBe(canonicalReasons(reasons));
    }
    if (decided.change) {
      expect(decided.change).toEqual({ cid: CID_1, desired: reasons.length > 0, reasons });
    }
  });
});

describe("reasonFlags: one flag per reason kind present", () => {
  it("sets exactly the kinds present", () => {
    expect(reasonFlags([{ kind: "optimistic", expiresAt: new Date(0) }])).toEqual({
      is_confirmed: false,
      is_pending: false,
      is_optimistic: true,
      is_demoted: false,
      is_psa: false,
    });
    expect(reasonFlags([{ kind: "psa", requests: 2 }])).toMatchObject({
      is_optimistic: false,
      is_psa: true,
    });
    expect(reasonFlags([])).toEqual({
      is_confirmed: false,
      is_pending: false,
      is_optimistic: false,
      is_demoted: false,
      is_psa: false,
    });
  });
});
