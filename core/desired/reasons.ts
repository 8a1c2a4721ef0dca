import type { Hex } from "@/src/events.js";

/**
 * Why a CID is desired. Every desired CID carries at least one reason; a CID with none is
 * not desired. Reasons are data so the API can explain a pin and the auditors can digest it.
 */
export const DESIRED_REASON_KINDS = [
  "confirmed",
  "pending",
  "optimistic",
  "demoted",
  "psa",
] as const;
export type DesiredReasonKind = (typeof DESIRED_REASON_KINDS)[number];

/** The PinHash log a chain-derived reason stems from. */
export type PinHashRef = {
  chainId: number;
  /** The storage contract that emitted the PinHash, lowercase. */
  contract: Hex;
  transactionHash: Hex;
  blockNumber: bigint;
  /** Ponder's event id of the PinHash log. */
  eventId: string;
};

/** A counted PinHash in a final block (block ≤ the chain's finalized block). */
export type ConfirmedReason = { kind: "confirmed" } & PinHashRef;

/** A counted PinHash not yet final: desired eagerly; it vanishes if the block is reorged away. */
export type PendingReason = {
  kind: "pending";
  /** blockNumber − finalizedBlock at evaluation time: blocks until it becomes confirmed. */
  confirmationsLeft: number;
} & PinHashRef;

/** An upload through the API whose TTL has not run out (the latest expiry of the CID's uploads). */
export type OptimisticReason = { kind: "optimistic"; expiresAt: Date };

/**
 * A counted PinHash whose contract was unregistered by a final Unregister (on chain) or an
 * off-chain unregistration, and not registered again since: kept until `until`.
 */
export type DemotedReason = {
  kind: "demoted";
  /** unregisteredAt + QUASAR_PIN_TTL: desired while now < until. */
  until: Date;
  /** The Unregister's block time (on chain) or creation time (off chain). */
  unregisteredAt: Date;
  /** Where the demoting unregistration came from. */
  unregisterSource: "chain" | "offchain";
  /** Ponder event id of the Unregister, or "offchain:<id>". */
  unregisterId: string;
} & PinHashRef;

/**
 * Pinning Service API requests (any key's) that name the CID: desired until the last one is
 * deleted, no TTL. Local knowledge like an upload: never part of the chain digest.
 */
export type PsaReason = { kind: "psa"; requests: number };

export type DesiredReason =
  | ConfirmedReason
  | PendingReason
  | OptimisticReason
  | DemotedReason
  | PsaReason;

/** One desired CID with every reason that holds now. */
export type DesiredEntry = {
  cid: string;
  /** Never empty; sorted canonically (see `compareReasons`). */
  reasons: DesiredReason[];
  /**
   * Earliest future instant at which a reason ends by time alone (an optimistic expiry or a
   * demotion end), or null when only events can change this CID. Lets the engine schedule
   * TTL expiries without scanning.
   */
  nextChangeAt: Date | null;
};

/** JSON-safe form of a reason (bigint as decimal strings, dates as ISO strings), for jsonb and HTTP. */
export type DesiredReasonJson =
  | ({ kind: "confirmed" } & PinHashRefJson)
  | ({ kind: "pending"; confirmationsLeft: number } & PinHashRefJson)
  | { kind: "optimistic"; expiresAt: string }
  | { kind: "psa"; requests: number }
  | ({
      kind: "demoted";
      until: string;
      unregisteredAt: string;
      unregisterSource: "chain" | "offchain";
      unregisterId: string;
    } & PinHashRefJson);

type PinHashRefJson = {
  chainId: number;
  contract: Hex;
  transactionHash: Hex;
  blockNumber: string;
  eventId: string;
};

export function reasonToJson(reason: DesiredReason): DesiredReasonJson {
  switch (reason.kind) {
    case "optimistic":
      return { kind: "optimistic", expiresAt: reason.expiresAt.toISOString() };
    case "psa":
      return { kind: "psa", requests: reason.requests };
    case "confirmed":
      return { kind: "confirmed", ...refToJson(reason) };
    case "pending":
      return { kind: "pending", confirmationsLeft: reason.confirmationsLeft, ...refToJson(reason) };
    case "demoted":
      return {
        kind: "demoted",
        until: reason.until.toISOString(),
        unregisteredAt: reason.unregisteredAt.toISOString(),
        unregisterSource: reason.unregisterSource,
        unregisterId: reason.unregisterId,
        ...refToJson(reason),
      };
  }
}

export function reasonFromJson(json: DesiredReasonJson): DesiredReason {
  switch (json.kind) {
    case "optimistic":
      return { kind: "optimistic", expiresAt: new Date(json.expiresAt) };
    case "psa":
      return { kind: "psa", requests: json.requests };
    case "confirmed":
      return { kind: "confirmed", ...refFromJson(json) };
    case "pending":
      return { kind: "pending", confirmationsLeft: json.confirmationsLeft, ...refFromJson(json) };
    case "demoted":
      return {
        kind: "demoted",
        until: new Date(json.until),
        unregisteredAt: new Date(json.unregisteredAt),
        unregisterSource: json.unregisterSource,
        unregisterId: json.unregisterId,
        ...refFromJson(json),
      };
  }
}

function refToJson(ref: PinHashRef): PinHashRefJson {
  return {
    chainId: ref.chainId,
    contract: ref.contract,
    transactionHash: ref.transactionHash,
    blockNumber: ref.blockNumber.toString(),
    eventId: ref.eventId,
  };
}

function refFromJson(json: PinHashRefJson): PinHashRef {
  return {
    chainId: json.chainId,
    contract: json.contract,
    transactionHash: json.transactionHash,
    blockNumber: BigInt(json.blockNumber),
    eventId: json.eventId,
  };
}

const KIND_ORDER: Record<DesiredReasonKind, number> = {
  confirmed: 0,
  pending: 1,
  demoted: 2,
  optimistic: 3,
  psa: 4,
};

/** The canonical order of reasons: by kind, then chain, contract, block, event id. */
export function compareReasons(a: DesiredReason, b: DesiredReason): number {
  const byKind = KIND_ORDER[a.kind] - KIND_ORDER[b.kind];
  if (byKind !== 0) return byKind;
  if (a.kind === "optimistic" || b.kind === "optimistic") return 0;
  if (a.kind === "psa" || b.kind === "psa") return 0;
  if (a.chainId !== b.chainId) return a.chainId - b.chainId;
  if (a.contract !== b.contract) return a.contract < b.contract ? -1 : 1;
  if (a.blockNumber !== b.blockNumber) return a.blockNumber < b.blockNumber ? -1 : 1;
  return a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0;
}
