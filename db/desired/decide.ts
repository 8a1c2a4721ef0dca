import type { Evaluation, PinRef } from "@/core/desired/evaluate.js";
import { type DesiredReason, reasonToJson } from "@/core/desired/reasons.js";
import {
  chainAction,
  contractKey,
  isFinalAction,
  type RegistrationAction,
  standingAction,
} from "@/core/desired/timeline.js";
import type { ChainEvent, ChainProgress } from "@/src/events.js";
import type { DesiredChange } from "./types.js";

/**
 * The pure decisions of one desired-store step (step.ts does the I/O around them): what a
 * page of final events adds to the fold tables, what the unfinalized tail holds, whether a
 * contract's standing moved, and what one CID's new evaluation writes. Table-tested in
 * decide.test.ts.
 */

/** Highest block of a chain that is both final and fully indexed: what may be folded. */
export function foldLimit(chain: ChainProgress): bigint {
  // biome-ignore lint/complexity/useMathMinMax: Math.min does not take bigint
  return chain.finalizedBlock < chain.indexedBlock ? chain.finalizedBlock : chain.indexedBlock;
}

/** A PinHash event as a ref of its (valid, normalised) CID. */
export function toRef(event: ChainEvent, cid: string): PinRef {
  return {
    cid,
    chainId: event.chainId,
    contract: event.contract,
    eventId: event.id,
    blockNumber: event.blockNumber,
    blockTimestamp: event.blockTimestamp,
    transactionHash: event.transactionHash,
  };
}

/** Rows for pin_ref and registration_event, as inserted. */
export type PinRefRow = {
  event_id: string;
  cid: string;
  chain_id: number;
  contract: string;
  block_number: bigint;
  block_timestamp: bigint;
  transaction_hash: string;
};
export type RegistrationEventRow = Omit<PinRefRow, "cid"> & {
  action: "register" | "unregister";
};

/**
 * What a page of newly final events adds to the persisted fold: a pin_ref row per valid
 * PinHash (an invalid CID is never desired: nothing to keep), a registration_event row per
 * Register/Unregister naming a contract, and the CIDs and contract keys to re-evaluate.
 */
export function foldEvents(page: readonly ChainEvent[]): {
  refs: PinRefRow[];
  registrations: RegistrationEventRow[];
  cids: string[];
  contracts: string[];
} {
  const out = {
    refs: [] as PinRefRow[],
    registrations: [] as RegistrationEventRow[],
    cids: [] as string[],
    contracts: [] as string[],
  };
  for (const event of page) {
    const row = {
      event_id: event.id,
      chain_id: event.chainId,
      block_number: event.blockNumber,
      block_timestamp: event.blockTimestamp,
      transaction_hash: event.transactionHash,
    };
    if (event.kind === "pin_hash") {
      if (event.cid === null) continue;
      out.refs.push({ ...row, cid: event.cid, contract: event.contract });
      out.cids.push(event.cid);
    } else if (event.subject !== null) {
      out.registrations.push({ ...row, contract: event.subject, action: event.kind });
      out.contracts.push(contractKey(event.chainId, event.subject));
    }
  }
  return out;
}

/**
 * The unfinalized tail of a chain as an in-memory overlay: PinHash refs by CID and
 * registration actions by contract key, in the events' order. Recomputed every step, so a
 * reorg simply changes what it holds.
 */
export function overlayTail(
  tail: readonly ChainEvent[],
  into: { refs: Map<string, PinRef[]>; actions: Map<string, RegistrationAction[]> },
): void {
  for (const event of tail) {
    if (event.kind === "pin_hash") {
      if (event.cid === null) continue;
      push(into.refs, event.cid, toRef(event, event.cid));
    } else if (event.subject !== null) {
      const action = chainAction({ ...event, subject: event.subject, kind: event.kind });
      push(into.actions, contractKey(action.chainId, action.contract), action);
    }
  }
}

function push<T>(map: Map<string, T[]>, key: string, item: T): void {
  const list = map.get(key);
  if (list) list.push(item);
  else map.set(key, [item]);
}

/** A contract's stored standing (contract_standing), as the step compares it. */
export type Standing = { standingId: string | null; standingFinal: boolean };

/**
 * A contract's standing from its merged timeline, compared with the stored one: `write` when
 * the row must change, `moved` when the deciding action itself changed (a Register, a final
 * Unregister, one reorged away), so every CID of the contract must be re-evaluated. A standing
 * that only became final is written but moves nothing.
 */
export function decideStanding(
  timeline: readonly RegistrationAction[],
  finalizedBlock: bigint,
  before: Standing | undefined,
): { write?: Standing; moved: boolean } {
  const standing = standingAction(timeline, finalizedBlock);
  const next: Standing = {
    standingId: standing?.id ?? null,
    standingFinal: standing === undefined || isFinalAction(standing, finalizedBlock),
  };
  if (before?.standingId === next.standingId && before.standingFinal === next.standingFinal)
    return { moved: false };
  return { write: next, moved: (before?.standingId ?? null) !== next.standingId };
}

/** The stored answer for one CID (desired_cid), as the step compares it. */
export type StoredAnswer = { json: string; usesTail: boolean };

/** One desired_cid row to write. */
export type DesiredRow = {
  cid: string;
  reasons: DesiredReason[];
  /** canonicalReasons(reasons): what is stored and compared. */
  json: string;
  nextChangeAt: Date | null;
  usesTail: boolean;
};

/** The stored, comparable form of a list of reasons. */
export function canonicalReasons(reasons: readonly DesiredReason[]): string {
  return JSON.stringify(reasons.map(reasonToJson));
}

/**
 * What a CID's new evaluation writes: remove the row (no reason left), upsert it (other
 * reasons, or it entered or left the tail) or nothing; `change` when the answer itself
 * differs. A row that merely left the tail is rewritten but is not a change.
 */
export function decideAnswer(
  cid: string,
  evaluation: Evaluation,
  before: StoredAnswer | undefined,
  usesTail: boolean,
): { remove?: true; upsert?: DesiredRow; change?: DesiredChange } {
  if (evaluation.reasons.length === 0) {
    if (before === undefined) return {};
    return { remove: true, change: { cid, desired: false, reasons: [] } };
  }
  const json = canonicalReasons(evaluation.reasons);
  if (before?.json === json && before.usesTail === usesTail) return {};
  const upsert: DesiredRow = {
    cid,
    reasons: evaluation.reasons,
    json,
    nextChangeAt: evaluation.nextChangeAt,
    usesTail,
  };
  return before?.json === json
    ? { upsert }
    : { upsert, change: { cid, desired: true, reasons: evaluation.reasons } };
}

/** The reason-kind flags of a desired_cid row (its partial indexes and counts use them). */
export function reasonFlags(reasons: readonly DesiredReason[]): {
  is_confirmed: boolean;
  is_pending: boolean;
  is_optimistic: boolean;
  is_demoted: boolean;
  is_psa: boolean;
} {
  const has = (kind: DesiredReason["kind"]) => reasons.some((r) => r.kind === kind);
  return {
    is_confirmed: has("confirmed"),
    is_pending: has("pending"),
    is_optimistic: has("optimistic"),
    is_demoted: has("demoted"),
    is_psa: has("psa"),
  };
}
