import { describe, expect, it } from "vitest";
import type { ChainEvent, ChainProgress } from "@/src/events.js";
import {
  blockDate,
  CIDS,
  CONTRACT_A,
  CONTRACT_B,
  invalidPinHash,
  pinHash,
  register,
  unregister,
} from "@/test/desired/history.js";
import { deriveDesiredSet, type OptimisticPin } from "./derive.js";
import type { DesiredReason } from "./reasons.js";
import type { OffchainRegistration } from "./timeline.js";

const TTL_MS = 24 * 3600 * 1000;
const [C0, C1, C2] = CIDS;
const plus = (block: bigint, ms: number) => new Date(blockDate(block).getTime() + ms);

type Case = {
  name: string;
  events: ChainEvent[];
  offchain?: OffchainRegistration[];
  optimistic?: OptimisticPin[];
  /** Finalized block per chain id; chain 1 defaults to 1000. */
  finalized?: Record<number, bigint>;
  now?: Date;
  /** Desired CIDs only, each with its reasons' kinds and contracts. */
  expect: Record<string, string[]>;
};

/** Renders a reason compactly for the table: kind, contract letter, chain when not 1. */
function short(reason: DesiredReason): string {
  if (reason.kind === "optimistic" || reason.kind === "psa") return reason.kind;
  const letter = reason.contract === CONTRACT_A ? "A" : reason.contract === CONTRACT_B ? "B" : "?";
  return `${reason.kind}:${letter}${reason.chainId === 1 ? "" : `@${reason.chainId}`}`;
}

function progressOf(finalized: Record<number, bigint> = {}): ChainProgress[] {
  const all = { 1: 1000n, ...finalized };
  return Object.entries(all).map(([chainId, block]) => ({
    chainId: Number(chainId),
    indexedBlock: 2000n,
    finalizedBlock: block,
  }));
}

const cases: Case[] = [
  {
    name: "a PinHash after a Register, final, is confirmed",
    events: [register(CONTRACT_A, { block: 1n }), pinHash(CONTRACT_A, C0, { block: 2n })],
    expect: { [C0]: ["confirmed:A"] },
  },
  {
    name: "a PinHash before the Register does not count",
    events: [pinHash(CONTRACT_A, C0, { block: 1n }), register(CONTRACT_A, { block: 2n })],
    expect: {},
  },
  {
    name: "a PinHash in the same block but before the Register's log does not count",
    events: [
      pinHash(CONTRACT_A, C0, { block: 2n, log: 0 }),
      register(CONTRACT_A, { block: 2n, log: 1 }),
      pinHash(CONTRACT_A, C1, { block: 2n, log: 2 }),
    ],
    expect: { [C1]: ["confirmed:A"] },
  },
  {
    name: "a PinHash after a final Unregister does not count, and after re-Register it does",
    events: [
      register(CONTRACT_A, { block: 1n }),
      unregister(CONTRACT_A, { block: 5n }),
      pinHash(CONTRACT_A, C0, { block: 6n }),
      register(CONTRACT_A, { block: 7n }),
      pinHash(CONTRACT_A, C1, { block: 8n }),
    ],
    expect: { [C1]: ["confirmed:A"] },
  },
  {
    name: "an unfinalized PinHash is pending",
    events: [register(CONTRACT_A, { block: 1n }), pinHash(CONTRACT_A, C0, { block: 10n })],
    finalized: { 1: 5n },
    expect: { [C0]: ["pending:A"] },
  },
  {
    name: "a non-final Unregister changes nothing",
    events: [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
      pinHash(CONTRACT_A, C1, { block: 12n }),
      unregister(CONTRACT_A, { block: 20n }),
    ],
    finalized: { 1: 10n },
    now: plus(20n, TTL_MS * 10),
    expect: { [C0]: ["confirmed:A"], [C1]: ["pending:A"] },
  },
  {
    name: "a final Unregister demotes until its block time + TTL",
    events: [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
      unregister(CONTRACT_A, { block: 20n }),
    ],
    finalized: { 1: 30n },
    now: plus(20n, TTL_MS - 1),
    expect: { [C0]: ["demoted:A"] },
  },
  {
    name: "a demotion ends exactly at its block time + TTL",
    events: [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
      unregister(CONTRACT_A, { block: 20n }),
    ],
    finalized: { 1: 30n },
    now: plus(20n, TTL_MS),
    expect: {},
  },
  {
    name: "Unregister then Register within the TTL restores: confirmed, for ever",
    events: [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
      unregister(CONTRACT_A, { block: 5n }),
      register(CONTRACT_A, { block: 8n }),
    ],
    finalized: { 1: 30n },
    now: plus(5n, TTL_MS * 3),
    expect: { [C0]: ["confirmed:A"] },
  },
  {
    name: "a non-final Register restores a demoted contract (it only keeps content longer)",
    events: [
      register(CONTRACT_A, { block: 1n }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
      unregister(CONTRACT_A, { block: 5n }),
      register(CONTRACT_A, { block: 40n }),
    ],
    finalized: { 1: 30n },
    now: plus(5n, 1000),
    expect: { [C0]: ["confirmed:A"] },
  },
  {
    name: "same CID from two contracts, one unregisters: within the TTL both reasons",
    events: [
      register(CONTRACT_A, { block: 1n, log: 0 }),
      register(CONTRACT_B, { block: 1n, log: 1 }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
      pinHash(CONTRACT_B, C0, { block: 3n }),
      unregister(CONTRACT_A, { block: 5n }),
    ],
    finalized: { 1: 30n },
    now: plus(5n, 1000),
    expect: { [C0]: ["confirmed:B", "demoted:A"] },
  },
  {
    name: "same CID from two contracts, one unregisters: after the TTL the other still holds it",
    events: [
      register(CONTRACT_A, { block: 1n, log: 0 }),
      register(CONTRACT_B, { block: 1n, log: 1 }),
      pinHash(CONTRACT_A, C0, { block: 2n }),
      pinHash(CONTRACT_B, C0, { block: 3n }),
      pinHash(CONTRACT_A, C1, { block: 3n, log: 1 }),
      unregister(CONTRACT_A, { block: 5n }),
    ],
    finalized: { 1: 30n },
    now: plus(5n, TTL_MS),
    expect: { [C0]: ["confirmed:B"] },
  },
  {
    name: "a reorged PinHash vanishes but a live optimistic upload keeps the CID",
    // The PinHash at block 12 was reorged away: the indexer deleted its row.
    events: [register(CONTRACT_A, { block: 1n })],
    optimistic: [{ cid: C0, expiresAt: plus(12n, TTL_MS) }],
    finalized: { 1: 10n },
    now: plus(12n, 1000),
    expect: { [C0]: ["optimistic"] },
  },
  {
    name: "a pending PinHash and a live upload of the same CID: both reasons",
    events: [register(CONTRACT_A, { block: 1n }), pinHash(CONTRACT_A, C0, { block: 12n })],
    optimistic: [{ cid: C0, expiresAt: plus(12n, TTL_MS) }],
    finalized: { 1: 10n },
    now: plus(12n, 1000),
    expect: { [C0]: ["pending:A", "optimistic"] },
  },
  {
    name: "an upload is not desired once now == expiresAt; several uploads: latest wins",
    events: [],
    optimistic: [
      { cid: C0, expiresAt: plus(0n, 1000) },
      { cid: C1, expiresAt: plus(0n, 1000) },
      { cid: C1, expiresAt: plus(0n, 5000) },
      { cid: C1, expiresAt: plus(0n, 2000) },
    ],
    now: plus(0n, 1000),
    expect: { [C1]: ["optimistic"] },
  },
  {
    name: "an upload is desired 1 ms before its expiry",
    events: [],
    optimistic: [{ cid: C0, expiresAt: plus(0n, 1000) }],
    now: plus(0n, 999),
    expect: { [C0]: ["optimistic"] },
  },
  {
    name: "invalid CIDs are never desired",
    events: [
      register(CONTRACT_A, { block: 1n }),
      invalidPinHash(CONTRACT_A, "/ipfs/nope", { block: 2n }),
      pinHash(CONTRACT_A, C0, { block: 3n }),
    ],
    expect: { [C0]: ["confirmed:A"] },
  },
  {
    name: "two chains: a registration counts only on its own chain, with that chain's finality",
    events: [
      register(CONTRACT_A, { chainId: 1, block: 1n }),
      pinHash(CONTRACT_A, C0, { chainId: 2, block: 2n }),
      register(CONTRACT_A, { chainId: 2, block: 3n }),
      pinHash(CONTRACT_A, C1, { chainId: 2, block: 4n }),
      pinHash(CONTRACT_A, C2, { chainId: 2, block: 9n }),
    ],
    finalized: { 2: 5n },
    expect: { [C1]: ["confirmed:A@2"], [C2]: ["pending:A@2"] },
  },
  {
    name: "two chains: a final Unregister on one chain leaves the other chain's pins confirmed",
    events: [
      register(CONTRACT_A, { chainId: 1, block: 1n }),
      register(CONTRACT_A, { chainId: 2, block: 1n }),
      pinHash(CONTRACT_A, C0, { chainId: 1, block: 2n }),
      pinHash(CONTRACT_A, C0, { chainId: 2, block: 2n }),
      unregister(CONTRACT_A, { chainId: 1, block: 3n }),
    ],
    finalized: { 2: 100n },
    now: plus(3n, TTL_MS + 1),
    expect: { [C0]: ["confirmed:A@2"] },
  },
  {
    name: "an off-chain registration counts for PinHash logs at or after its time",
    events: [
      pinHash(CONTRACT_B, C0, { block: 4n }),
      pinHash(CONTRACT_B, C1, { block: 5n }),
      pinHash(CONTRACT_B, C2, { block: 6n }),
    ],
    // Exactly block 5's timestamp: block 5 counts, block 4 does not.
    offchain: [
      { id: 1, chainId: 1, contract: CONTRACT_B, action: "register", createdAt: blockDate(5n) },
    ],
    expect: { [C1]: ["confirmed:B"], [C2]: ["confirmed:B"] },
  },
  {
    name: "an off-chain registration 1 ms after a block's time misses that block",
    events: [pinHash(CONTRACT_B, C0, { block: 5n }), pinHash(CONTRACT_B, C1, { block: 6n })],
    offchain: [
      { id: 1, chainId: 1, contract: CONTRACT_B, action: "register", createdAt: plus(5n, 1) },
    ],
    expect: { [C1]: ["confirmed:B"] },
  },
  {
    name: "an off-chain unregistration is final at once and demotes from its own time",
    events: [register(CONTRACT_A, { block: 1n }), pinHash(CONTRACT_A, C0, { block: 2n })],
    offchain: [
      { id: 7, chainId: 1, contract: CONTRACT_A, action: "unregister", createdAt: plus(3n, 500) },
    ],
    finalized: { 1: 1n },
    now: plus(3n, 1000),
    expect: { [C0]: ["demoted:A"] },
  },
  {
    name: "an off-chain registration does not apply to another chain",
    events: [pinHash(CONTRACT_B, C0, { chainId: 2, block: 6n })],
    offchain: [
      { id: 1, chainId: 1, contract: CONTRACT_B, action: "register", createdAt: blockDate(1n) },
    ],
    finalized: { 2: 10n },
    expect: {},
  },
];

describe("deriveDesiredSet", () => {
  it.each(cases)("$name", (testCase) => {
    const desired = deriveDesiredSet({
      events: testCase.events,
      offchainRegistrations: testCase.offchain ?? [],
      optimisticPins: testCase.optimistic ?? [],
      progress: progressOf(testCase.finalized),
      now: testCase.now ?? plus(100n, 0),
      ttlMs: TTL_MS,
    });
    const got = Object.fromEntries(
      [...desired].map(([cid, entry]) => [cid, entry.reasons.map(short)]),
    );
    expect(got).toEqual(testCase.expect);
  });

  it("reports confirmationsLeft and turns pending into confirmed as finality advances", () => {
    const events = [register(CONTRACT_A, { block: 1n }), pinHash(CONTRACT_A, C0, { block: 10n })];
    const at = (finalized: bigint) =>
      deriveDesiredSet({
        events,
        progress: progressOf({ 1: finalized }),
        now: plus(20n, 0),
        ttlMs: TTL_MS,
      }).get(C0)?.reasons[0];
    expect(at(3n)).toMatchObject({ kind: "pending", confirmationsLeft: 7, blockNumber: 10n });
    expect(at(9n)).toMatchObject({ kind: "pending", confirmationsLeft: 1 });
    expect(at(10n)).toMatchObject({ kind: "confirmed", blockNumber: 10n });
  });

  it("a chain without progress has nothing final", () => {
    const events = [
      register(CONTRACT_A, { chainId: 5, block: 1n }),
      pinHash(CONTRACT_A, C0, { chainId: 5, block: 2n }),
    ];
    const entry = deriveDesiredSet({ events, progress: [], now: plus(20n, 0), ttlMs: TTL_MS }).get(
      C0,
    );
    expect(entry?.reasons).toMatchObject([{ kind: "pending", confirmationsLeft: 3 }]);
  });

  it("gives a demotion's end and unregistration, and schedules it as nextChangeAt", () => {
    const unregisterEvent = unregister(CONTRACT_A, { block: 20n });
    const entry = deriveDesiredSet({
      events: [
        register(CONTRACT_A, { block: 1n }),
        pinHash(CONTRACT_A, C0, { block: 2n }),
        unregisterEvent,
      ],
      optimisticPins: [{ cid: C0, expiresAt: plus(20n, TTL_MS * 2) }],
      progress: progressOf({ 1: 25n }),
      now: plus(20n, 1),
      ttlMs: TTL_MS,
    }).get(C0);
    expect(entry?.reasons).toEqual([
      expect.objectContaining({
        kind: "demoted",
        until: plus(20n, TTL_MS),
        unregisteredAt: blockDate(20n),
        unregisterSource: "chain",
        unregisterId: unregisterEvent.id,
        blockNumber: 2n,
      }),
      { kind: "optimistic", expiresAt: plus(20n, TTL_MS * 2) },
    ]);
    expect(entry?.nextChangeAt).toEqual(plus(20n, TTL_MS));
  });

  it("has no nextChangeAt when only events can change a CID", () => {
    const entry = deriveDesiredSet({
      events: [register(CONTRACT_A, { block: 1n }), pinHash(CONTRACT_A, C0, { block: 2n })],
      progress: progressOf(),
      now: plus(20n, 0),
      ttlMs: TTL_MS,
    }).get(C0);
    expect(entry?.nextChangeAt).toBeNull();
  });

  it("ignores a replayed event (same id twice)", () => {
    const pin = pinHash(CONTRACT_A, C0, { block: 2n });
    const entry = deriveDesiredSet({
      events: [register(CONTRACT_A, { block: 1n }), pin, pin],
      progress: progressOf(),
      now: plus(20n, 0),
      ttlMs: TTL_MS,
    }).get(C0);
    expect(entry?.reasons).toHaveLength(1);
  });

  it("returns CIDs in ascending order", () => {
    const desired = deriveDesiredSet({
      events: [
        register(CONTRACT_A, { block: 1n }),
        ...CIDS.map((cid, i) => pinHash(CONTRACT_A, cid, { block: 2n, log: i })),
      ],
      progress: progressOf(),
      now: plus(20n, 0),
      ttlMs: TTL_MS,
    });
    expect([...desired.keys()]).toEqual([...CIDS].sort());
  });
});
