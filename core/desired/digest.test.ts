import { describe, expect, it } from "vitest";
import {
  blockDate,
  CIDS,
  CONTRACT_A,
  pinHash,
  register,
  unregister,
} from "@/test/desired/history.js";
import { deriveDesiredSet } from "./derive.js";
import { digestDesiredSet, renderEntry } from "./digest.js";

const TTL_MS = 3600_000;
const [C0, C1] = CIDS;
const events = [
  register(CONTRACT_A, { block: 1n }),
  pinHash(CONTRACT_A, C0, { block: 2n }),
  pinHash(CONTRACT_A, C1, { block: 8n }),
];
const derive = (
  finalized: bigint,
  extra: Parameters<typeof deriveDesiredSet>[0]["optimisticPins"] = [],
) =>
  deriveDesiredSet({
    events,
    optimisticPins: extra,
    progress: [{ chainId: 1, indexedBlock: 20n, finalizedBlock: finalized }],
    now: blockDate(20n),
    ttlMs: TTL_MS,
  });

describe("digestDesiredSet", () => {
  it("renders a CID with its chain-derived reasons, canonically", () => {
    const entry = derive(10n).get(C0);
    expect(entry && renderEntry(entry)).toBe(
      `${C0}\tconfirmed 1 ${CONTRACT_A} 2 ${events[1]?.transactionHash}`,
    );
  });

  it("does not depend on the entries' order", () => {
    const entries = [...derive(10n).values()];
    expect(digestDesiredSet(entries)).toEqual(digestDesiredSet([...entries].reverse()));
    expect(digestDesiredSet(entries).digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(digestDesiredSet(entries).cids).toBe(2);
  });

  it("ignores confirmationsLeft but not the pending/confirmed distinction", () => {
    expect(digestDesiredSet(derive(3n).values())).toEqual(digestDesiredSet(derive(4n).values()));
    expect(digestDesiredSet(derive(7n).values())).not.toEqual(
      digestDesiredSet(derive(8n).values()),
    );
  });

  it("leaves optimistic uploads out unless asked, since no chain replay sees them", () => {
    const withUpload = derive(10n, [{ cid: CIDS[4], expiresAt: blockDate(30n) }]);
    expect(withUpload.size).toBe(3);
    expect(digestDesiredSet(withUpload.values())).toEqual(digestDesiredSet(derive(10n).values()));
    const included = digestDesiredSet(withUpload.values(), { includeOptimistic: true });
    expect(included.cids).toBe(3);
    expect(included.digest).not.toBe(digestDesiredSet(derive(10n).values()).digest);
  });

  it("never digests Pinning Service API requests, with or without optimistic uploads", () => {
    const base = [...derive(10n).values()];
    const withPsa = base.map((entry) =>
      entry.cid === C0
        ? { ...entry, reasons: [...entry.reasons, { kind: "psa" as const, requests: 2 }] }
        : entry,
    );
    const psaOnly = { cid: CIDS[3], reasons: [{ kind: "psa" as const, requests: 1 }] };
    const all = [...withPsa, { ...psaOnly, nextChangeAt: null }];
    expect(digestDesiredSet(all)).toEqual(digestDesiredSet(base));
    expect(digestDesiredSet(all, { includeOptimistic: true })).toEqual(
      digestDesiredSet(base, { includeOptimistic: true }),
    );
  });

  it("changes when a demotion starts", () => {
    const demoted = deriveDesiredSet({
      events: [...events, unregister(CONTRACT_A, { block: 12n })],
      progress: [{ chainId: 1, indexedBlock: 20n, finalizedBlock: 15n }],
      now: blockDate(20n),
      ttlMs: TTL_MS,
    });
    expect(demoted.size).toBe(2);
    expect(digestDesiredSet(demoted.values())).not.toEqual(digestDesiredSet(derive(15n).values()));
  });
});
