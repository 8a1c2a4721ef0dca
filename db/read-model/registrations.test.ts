import { describe, expect, test } from "vitest";
import type { ChainEvent, EventKind, Hex } from "@/src/events.js";
import { foldRegistrations } from "./registrations.js";

const A = "0x1111111111111111111111111111111111111111" as Hex;
const B = "0x2222222222222222222222222222222222222222" as Hex;

let next = 0;
function ev(chainId: number, kind: EventKind, subject: Hex | null, block: bigint): ChainEvent {
  next += 1;
  return {
    id: String(next).padStart(75, "0"),
    chainId,
    blockNumber: block,
    blockHash: "0x00",
    blockTimestamp: 0n,
    transactionHash: "0x00",
    logIndex: 0,
    contract: "0x5fbdb2315678afecb367f032d93f642f64180aa3",
    kind,
    subject,
    rawCid: null,
    cid: null,
    invalidReason: null,
  };
}

describe("foldRegistrations", () => {
  test("the last register/unregister per chain and contract decides, in id order", () => {
    const r1 = ev(1, "register", A, 1n);
    const u1 = ev(1, "unregister", A, 2n);
    const r2 = ev(1, "register", A, 3n);
    const rb = ev(1, "register", B, 3n);
    const ub = ev(1, "unregister", B, 4n);
    const other = ev(2, "register", A, 1n);
    const pin = ev(1, "pin_hash", null, 5n);
    // Shuffled input: the fold sorts by id itself.
    const result = foldRegistrations([ub, r2, pin, other, r1, rb, u1]);
    expect(result).toEqual([
      { chainId: 1, contract: A, registered: true, sinceEventId: r2.id, sinceBlock: 3n },
      { chainId: 1, contract: B, registered: false, sinceEventId: ub.id, sinceBlock: 4n },
      { chainId: 2, contract: A, registered: true, sinceEventId: other.id, sinceBlock: 1n },
    ]);
  });

  test("checksummed and lowercase spellings are one contract", () => {
    const upper = ev(1, "register", "0xAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" as Hex, 1n);
    const lower = ev(1, "unregister", "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" as Hex, 2n);
    const result = foldRegistrations([upper, lower]);
    expect(result).toHaveLength(1);
    expect(result[0]?.registered).toBe(false);
  });

  test("no events, no contracts", () => {
    expect(foldRegistrations([])).toEqual([]);
  });
});
