import type { Hex } from "@/src/events.js";
import { compareReasons, type DesiredReason } from "./reasons.js";
import {
  actionBefore,
  chainPosition,
  type RegistrationAction,
  standingAction,
} from "./timeline.js";

/** A valid PinHash log of some CID, as the fold keeps it (whether it counts is decided here). */
export type PinRef = {
  cid: string;
  chainId: number;
  /** The emitting storage contract, lowercase. */
  contract: Hex;
  eventId: string;
  blockNumber: bigint;
  /** Seconds since the epoch. */
  blockTimestamp: bigint;
  transactionHash: Hex;
};

/** Everything the rules need to judge one CID. */
export type EvaluationContext = {
  /** The merged registration history of (chainId, contract), sorted; empty when none. */
  timelineOf: (chainId: number, contract: Hex) => readonly RegistrationAction[];
  /** The chain's finalized block; a chain with no progress yet has nothing final (-1). */
  finalizedBlockOf: (chainId: number) => bigint;
  now: Date;
  /** QUASAR_PIN_TTL in milliseconds. */
  ttlMs: number;
};

export type Evaluation = {
  /** Every reason that holds now, in canonical order; empty when the CID is not desired. */
  reasons: DesiredReason[];
  nextChangeAt: Date | null;
};

/**
 * Applies every desired-set rule to one CID: its PinHash refs (from all chains and
 * contracts), the latest expiry of its optimistic uploads and how many Pinning Service API
 * requests name it. The one place each rule lives;
 * the pure derivation and the reconciler's incremental store both call it.
 */
export function evaluateCid(
  refs: readonly PinRef[],
  optimisticExpiresAt: Date | null | undefined,
  context: EvaluationContext,
  psaRequests = 0,
): Evaluation {
  const nowMs = context.now.getTime();
  const reasons: DesiredReason[] = [];
  let nextChangeMs = Number.POSITIVE_INFINITY;

  // Rule: a Pinning Service API request holds its CID until it is deleted (no TTL).
  if (psaRequests > 0) reasons.push({ kind: "psa", requests: psaRequests });

  // Rule: an upload is desired while now < expiresAt (the latest expiry of the CID wins).
  if (optimisticExpiresAt && nowMs < optimisticExpiresAt.getTime()) {
    reasons.push({ kind: "optimistic", expiresAt: optimisticExpiresAt });
    nextChangeMs = Math.min(nextChangeMs, optimisticExpiresAt.getTime());
  }

  for (const ref of refs) {
    const timeline = context.timelineOf(ref.chainId, ref.contract);
    // Rule: a PinHash counts when the latest registration action before it is a Register.
    const counting = actionBefore(timeline, chainPosition(ref.blockTimestamp, ref.eventId));
    if (counting?.action !== "register") continue;
    const finalizedBlock = context.finalizedBlockOf(ref.chainId);
    const standing = standingAction(timeline, finalizedBlock);
    const pinHash = {
      chainId: ref.chainId,
      contract: ref.contract,
      transactionHash: ref.transactionHash,
      blockNumber: ref.blockNumber,
      eventId: ref.eventId,
    };
    if (standing === undefined || standing.action === "register") {
      // Rule: confirmed at or below the finalized block, pending above it.
      if (ref.blockNumber <= finalizedBlock) reasons.push({ kind: "confirmed", ...pinHash });
      else {
        reasons.push({
          kind: "pending",
          confirmationsLeft: Number(ref.blockNumber - finalizedBlock),
          ...pinHash,
        });
      }
      continue;
    }
    // Rule: a final Unregister after the counting Register demotes: kept until its time + TTL.
    const untilMs = standing.timeMs + context.ttlMs;
    if (nowMs >= untilMs) continue;
    reasons.push({
      kind: "demoted",
      until: new Date(untilMs),
      unregisteredAt: new Date(standing.timeMs),
      unregisterSource: standing.source,
      unregisterId: standing.id,
      ...pinHash,
    });
    nextChangeMs = Math.min(nextChangeMs, untilMs);
  }

  reasons.sort(compareReasons);
  return {
    reasons,
    nextChangeAt:
      Number.isFinite(nextChangeMs) && reasons.length > 0 ? new Date(nextChangeMs) : null,
  };
}
