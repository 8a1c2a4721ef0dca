import type { ChainEvent, Hex } from "@/src/events.js";

/** A storage contract's standing in its chain's registry, after the last event that named it. */
export type StorageContractStatus = {
  chainId: number;
  /** The storage contract, lowercase. */
  contract: Hex;
  registered: boolean;
  /** Id of the last register/unregister event naming it: the standing holds from there on. */
  sinceEventId: string;
  sinceBlock: bigint;
};

/**
 * Folds register/unregister events (any order; they are sorted by id here) into each
 * contract's latest standing, per chain. Other kinds are ignored. Pure, so the same rule
 * serves the read model's SQL answer, the auditors and tests.
 */
export function foldRegistrations(events: Iterable<ChainEvent>): StorageContractStatus[] {
  const relevant = [...events]
    .filter(
      (event) =>
        (event.kind === "register" || event.kind === "unregister") && event.subject !== null,
    )
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const latest = new Map<string, StorageContractStatus>();
  for (const event of relevant) {
    const contract = (event.subject as Hex).toLowerCase() as Hex;
    latest.set(`${event.chainId}:${contract}`, {
      chainId: event.chainId,
      contract,
      registered: event.kind === "register",
      sinceEventId: event.id,
      sinceBlock: event.blockNumber,
    });
  }
  return [...latest.values()].sort((a, b) =>
    a.chainId !== b.chainId
      ? a.chainId - b.chainId
      : a.contract < b.contract
        ? -1
        : a.contract > b.contract
          ? 1
          : 0,
  );
}
