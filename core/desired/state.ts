import type { ChainEvent, ChainProgress, Hex } from "@/src/events.js";
import { type Evaluation, evaluateCid, type PinRef } from "./evaluate.js";
import {
  chainAction,
  contractKey,
  insertAction,
  type OffchainRegistration,
  offchainAction,
  type RegistrationAction,
} from "./timeline.js";

/**
 * The desired set as a fold over history: what the events and off-chain registrations
 * have established, independent of the clock and of finality (those enter at evaluation).
 * The same state serves the one-shot derivation (auditors) and, persisted for the final
 * prefix of each chain, the reconciler's incremental store.
 */
export type DesiredState = {
  /** Per (chainId, contract): its merged registration history, sorted (see timeline.ts). */
  timelines: Map<string, RegistrationAction[]>;
  /** Per CID: every valid PinHash log of it, in arrival order. */
  refs: Map<string, PinRef[]>;
  /** Event ids already applied, so a replayed event is a no-op. */
  applied: Set<string>;
};

export function createDesiredState(): DesiredState {
  return { timelines: new Map(), refs: new Map(), applied: new Set() };
}

/**
 * Applies one chain event. Events must arrive in id order per chain; off-chain
 * registrations may be applied at any point. PinHash logs with an invalid CID (cid null)
 * are dropped: they are never desired. Returns the CID touched, if any.
 */
export function applyEvent(state: DesiredState, event: ChainEvent): string | undefined {
  if (state.applied.has(event.id)) return undefined;
  state.applied.add(event.id);
  if (event.kind === "pin_hash") {
    if (event.cid === null) return undefined;
    const ref: PinRef = {
      cid: event.cid,
      chainId: event.chainId,
      contract: event.contract,
      eventId: event.id,
      blockNumber: event.blockNumber,
      blockTimestamp: event.blockTimestamp,
      transactionHash: event.transactionHash,
    };
    const list = state.refs.get(event.cid);
    if (list) list.push(ref);
    else state.refs.set(event.cid, [ref]);
    return event.cid;
  }
  if (event.subject === null) return undefined;
  addAction(
    state,
    chainAction({
      id: event.id,
      chainId: event.chainId,
      subject: event.subject,
      kind: event.kind,
      blockNumber: event.blockNumber,
      blockTimestamp: event.blockTimestamp,
      transactionHash: event.transactionHash,
    }),
  );
  return undefined;
}

/** Applies one off-chain registration (final at once, effective from its creation time). */
export function applyOffchainRegistration(
  state: DesiredState,
  registration: OffchainRegistration,
): void {
  addAction(state, offchainAction(registration));
}

function addAction(state: DesiredState, action: RegistrationAction): void {
  const key = contractKey(action.chainId, action.contract);
  const timeline = state.timelines.get(key);
  if (timeline) insertAction(timeline, action);
  else state.timelines.set(key, [action]);
}

/** What evaluation needs besides the fold: finality, the clock, the TTL, optimistic uploads. */
export type EvaluateOptions = {
  progress: readonly ChainProgress[];
  /** Latest optimistic expiry per CID. */
  optimistic: ReadonlyMap<string, Date>;
  now: Date;
  ttlMs: number;
};

/** Applies every rule to one CID of the state (see evaluateCid). */
export function evaluate(state: DesiredState, cid: string, options: EvaluateOptions): Evaluation {
  return evaluateCid(
    state.refs.get(cid) ?? [],
    options.optimistic.get(cid),
    stateContext(state, options),
  );
}

/** The evaluation context of a state: timelines from the fold, finality from `progress`. */
export function stateContext(state: DesiredState, options: EvaluateOptions) {
  const finalized = new Map(options.progress.map((chain) => [chain.chainId, chain.finalizedBlock]));
  return {
    timelineOf: (chainId: number, contract: Hex) =>
      state.timelines.get(contractKey(chainId, contract)) ?? [],
    finalizedBlockOf: (chainId: number) => finalized.get(chainId) ?? -1n,
    now: options.now,
    ttlMs: options.ttlMs,
  };
}
