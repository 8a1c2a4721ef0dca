import type { ChainEvent, ChainProgress } from "@/src/events.js";
import { evaluateCid } from "./evaluate.js";
import type { DesiredEntry } from "./reasons.js";
import {
  applyEvent,
  applyOffchainRegistration,
  createDesiredState,
  type DesiredState,
  stateContext,
} from "./state.js";
import type { OffchainRegistration } from "./timeline.js";

/** An optimistic upload: desired while now < expiresAt. */
export type OptimisticPin = { cid: string; expiresAt: Date };

export type DeriveDesiredSetInput = {
  /** The event history (every chain), in id order per chain. Reorged events must be absent. */
  events: Iterable<ChainEvent>;
  offchainRegistrations?: Iterable<OffchainRegistration>;
  optimisticPins?: Iterable<OptimisticPin>;
  /** Finality per chain; a chain missing here has nothing final. */
  progress: readonly ChainProgress[];
  now: Date;
  /** QUASAR_PIN_TTL in milliseconds. */
  ttlMs: number;
};

/**
 * The desired pin set, from scratch: fold the history, then evaluate every CID. The
 * reference the reconciler's incremental store is tested against and what the auditors run
 * on events read straight from the chain. Returns desired CIDs only.
 */
export function deriveDesiredSet(input: DeriveDesiredSetInput): Map<string, DesiredEntry> {
  const state = createDesiredState();
  for (const registration of input.offchainRegistrations ?? []) {
    applyOffchainRegistration(state, registration);
  }
  for (const event of input.events) applyEvent(state, event);
  return evaluateAll(state, input);
}

/** Latest expiry per CID over a list of uploads (several uploads of one CID: latest wins). */
export function latestExpiries(pins: Iterable<OptimisticPin>): Map<string, Date> {
  const latest = new Map<string, Date>();
  for (const pin of pins) {
    const current = latest.get(pin.cid);
    if (!current || current.getTime() < pin.expiresAt.getTime()) latest.set(pin.cid, pin.expiresAt);
  }
  return latest;
}

/** Evaluates every CID the state or the uploads know of, in ascending CID order. */
export function evaluateAll(
  state: DesiredState,
  input: Pick<DeriveDesiredSetInput, "optimisticPins" | "progress" | "now" | "ttlMs">,
): Map<string, DesiredEntry> {
  const optimistic = latestExpiries(input.optimisticPins ?? []);
  const context = stateContext(state, { ...input, optimistic });
  const cids = new Set([...state.refs.keys(), ...optimistic.keys()]);
  const desired = new Map<string, DesiredEntry>();
  for (const cid of [...cids].sort()) {
    const { reasons, nextChangeAt } = evaluateCid(
      state.refs.get(cid) ?? [],
      optimistic.get(cid),
      context,
    );
    if (reasons.length > 0) desired.set(cid, { cid, reasons, nextChangeAt });
  }
  return desired;
}

export type { DesiredState };
