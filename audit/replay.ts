import { deriveDesiredSet, type OptimisticPin } from "@/core/desired/derive.js";
import { type DesiredSetDigest, digestDesiredSet } from "@/core/desired/digest.js";
import type { DesiredEntry } from "@/core/desired/reasons.js";
import type { OffchainRegistration } from "@/core/desired/timeline.js";
import type { ChainEvent } from "@/src/events.js";

/**
 * One chain's desired set recomputed by an auditor, from whichever history (Quasar's
 * database or the chain's own logs), with the derivation the reconciler runs
 * (deriveDesiredSet) and the digest two auditors compare (digestDesiredSet).
 */
export type ReplayInput = {
  chainId: number;
  /** The chain's history, any order; events of other chains are ignored. */
  events: Iterable<ChainEvent>;
  /** The source's finalized block (the indexer's, or the chain's finalized tag / depth). */
  finalizedBlock: bigint;
  /** Replay as of this block: later events are ignored and nothing above it is final. */
  toBlock?: bigint;
  /** Replay as of this instant: later blocks are ignored and TTLs are judged at this time. */
  at?: Date;
  /** The clock when `at` is not given. */
  now: Date;
  /** QUASAR_PIN_TTL in milliseconds. */
  ttlMs: number;
  /** The operator's off-chain registrations of this chain (from the database, or a file). */
  offchainRegistrations?: Iterable<OffchainRegistration>;
  /** Uploads through the API; only a database replay knows them. */
  optimisticPins?: Iterable<OptimisticPin>;
};

export type ReplayResult = {
  chainId: number;
  /** Highest block whose events were replayed, or null when there is no bound but the source's. */
  toBlock: bigint | null;
  /** The finalized block the evaluation used. */
  finalizedBlock: bigint;
  /** The instant TTLs were judged at. */
  now: Date;
  /** Every desired CID, ascending. */
  entries: DesiredEntry[];
  digest: DesiredSetDigest;
  /** Events replayed (after the bounds). */
  eventCount: number;
};

export function replayDesiredSet(input: ReplayInput): ReplayResult {
  const now = input.at ?? input.now;
  const atSeconds = input.at ? BigInt(Math.floor(input.at.getTime() / 1000)) : undefined;
  const events: ChainEvent[] = [];
  for (const event of input.events) {
    if (event.chainId !== input.chainId) continue;
    if (input.toBlock !== undefined && event.blockNumber > input.toBlock) continue;
    if (atSeconds !== undefined && event.blockTimestamp > atSeconds) continue;
    events.push(event);
  }
  // The derivation wants events in id order per chain.
  events.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  let finalizedBlock = input.finalizedBlock;
  if (input.toBlock !== undefined && input.toBlock < finalizedBlock) finalizedBlock = input.toBlock;

  const offchain = [...(input.offchainRegistrations ?? [])].filter(
    (registration) =>
      registration.chainId === input.chainId && registration.createdAt.getTime() <= now.getTime(),
  );
  const optimistic = [...(input.optimisticPins ?? [])];

  const desired = deriveDesiredSet({
    events,
    offchainRegistrations: offchain,
    optimisticPins: optimistic,
    progress: [{ chainId: input.chainId, indexedBlock: finalizedBlock, finalizedBlock }],
    now,
    ttlMs: input.ttlMs,
  });
  const entries = [...desired.values()];
  return {
    chainId: input.chainId,
    toBlock: input.toBlock ?? null,
    finalizedBlock,
    now,
    entries,
    digest: digestDesiredSet(entries, { includeOptimistic: optimistic.length > 0 }),
    eventCount: events.length,
  };
}
