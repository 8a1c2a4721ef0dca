import type { Hex } from "@/src/events.js";

/**
 * A storage contract's registration history on one chain: on-chain Register/Unregister
 * events of the chain's registry merged with off-chain registrations (operators' `POST
 * /storageContracts`), in one order.
 *
 * Order (documented in docs/desired-set.md): chain events by block timestamp, then by
 * Ponder event id; an off-chain registration created at time T (ms) is effective from the
 * first whole second ≥ T and sorts before every chain event of that second. So it counts
 * for PinHash logs whose block timestamp ≥ T, and never for earlier ones.
 */
export const REGISTRATION_ACTIONS = ["register", "unregister"] as const;
export type RegistrationActionKind = (typeof REGISTRATION_ACTIONS)[number];

/** A position in one chain's merged history; compare with `comparePositions`. */
export type Position = {
  /** Block timestamp in seconds (chain), or the first whole second ≥ creation (off chain). */
  second: bigint;
  /** 0: off-chain registration, 1: chain event; off-chain sorts first within a second. */
  rank: 0 | 1;
  /** Tie-break within (second, rank): the Ponder event id, or the padded creation time and id. */
  key: string;
};

export type RegistrationAction = {
  chainId: number;
  /** The storage contract concerned, lowercase. */
  contract: Hex;
  action: RegistrationActionKind;
  source: "chain" | "offchain";
  /** Ponder event id (chain) or "offchain:<id>". */
  id: string;
  /** Effective time in ms: block timestamp × 1000 (chain) or creation time (off chain). */
  timeMs: number;
  /** Chain events only: decides finality. Off-chain registrations are final at once. */
  blockNumber: bigint | null;
  transactionHash: Hex | null;
  position: Position;
};

/** An off-chain registration as stored by the reconciler (append-only). */
export type OffchainRegistration = {
  id: string | number | bigint;
  chainId: number;
  /** Lowercase address. */
  contract: Hex;
  action: RegistrationActionKind;
  createdAt: Date;
};

export function comparePositions(a: Position, b: Position): number {
  if (a.second !== b.second) return a.second < b.second ? -1 : 1;
  if (a.rank !== b.rank) return a.rank - b.rank;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

/** The position of a chain event (any kind) in its chain's merged history. */
export function chainPosition(blockTimestamp: bigint, eventId: string): Position {
  return { second: blockTimestamp, rank: 1, key: eventId };
}

export function offchainAction(registration: OffchainRegistration): RegistrationAction {
  const ms = registration.createdAt.getTime();
  const id = String(registration.id);
  return {
    chainId: registration.chainId,
    contract: registration.contract,
    action: registration.action,
    source: "offchain",
    id: `offchain:${id}`,
    timeMs: ms,
    blockNumber: null,
    transactionHash: null,
    position: {
      second: BigInt(Math.ceil(ms / 1000)),
      rank: 0,
      key: `${String(ms).padStart(16, "0")}:${id.padStart(20, "0")}`,
    },
  };
}

export function chainAction(event: {
  id: string;
  chainId: number;
  subject: Hex;
  kind: RegistrationActionKind;
  blockNumber: bigint;
  blockTimestamp: bigint;
  transactionHash: Hex;
}): RegistrationAction {
  return {
    chainId: event.chainId,
    contract: event.subject,
    action: event.kind,
    source: "chain",
    id: event.id,
    timeMs: Number(event.blockTimestamp) * 1000,
    blockNumber: event.blockNumber,
    transactionHash: event.transactionHash,
    position: chainPosition(event.blockTimestamp, event.id),
  };
}

/** Inserts `action` keeping the timeline sorted; a second copy of the same id is ignored. */
export function insertAction(timeline: RegistrationAction[], action: RegistrationAction): void {
  // Actions nearly always arrive in order: scan from the end.
  let index = timeline.length;
  while (index > 0) {
    const previous = timeline[index - 1] as RegistrationAction;
    if (previous.id === action.id) return;
    if (comparePositions(previous.position, action.position) <= 0) break;
    index--;
  }
  timeline.splice(index, 0, action);
}

/** Rule: the latest action strictly before `position` (any finality), or undefined. */
export function actionBefore(
  timeline: readonly RegistrationAction[],
  position: Position,
): RegistrationAction | undefined {
  let low = 0;
  let high = timeline.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (comparePositions((timeline[middle] as RegistrationAction).position, position) < 0) {
      low = middle + 1;
    } else high = middle;
  }
  return low === 0 ? undefined : timeline[low - 1];
}

/** Rule: an action is final when off chain, or when its block is at or below the chain's finalized block. */
export function isFinalAction(action: RegistrationAction, finalizedBlock: bigint): boolean {
  return action.blockNumber === null || action.blockNumber <= finalizedBlock;
}

/**
 * Rule: the action that decides a registered contract's standing now: the latest Register
 * (final or not: a Register only ever keeps content longer) or final Unregister. A
 * non-final Unregister is ignored, so nothing is released on information that is not final.
 */
export function standingAction(
  timeline: readonly RegistrationAction[],
  finalizedBlock: bigint,
): RegistrationAction | undefined {
  for (let index = timeline.length - 1; index >= 0; index--) {
    const action = timeline[index] as RegistrationAction;
    if (action.action === "register" || isFinalAction(action, finalizedBlock)) return action;
  }
  return undefined;
}

/** Key of a (chain, contract) pair in maps. */
export function contractKey(chainId: number, contract: string): string {
  return `${chainId}:${contract}`;
}
