/**
 * The indexer's event history as every other process sees it (through the read model).
 * One row per decoded log, in chain order; `id` is Ponder's event id, a total order over
 * all chains (block timestamp, chain id, block number, transaction index, log index).
 */
export const EVENT_KINDS = ["register", "unregister", "pin_hash"] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export type Hex = `0x${string}`;

export type ChainEvent = {
  /** Ponder's event id: sorts every event of every chain into one order. */
  id: string;
  chainId: number;
  blockNumber: bigint;
  blockHash: Hex;
  /** Seconds since the epoch, as in the block header. */
  blockTimestamp: bigint;
  transactionHash: Hex;
  logIndex: number;
  /** The emitting contract, lowercase. */
  contract: Hex;
  kind: EventKind;
  /** register/unregister: the storage contract named by the event, lowercase. */
  subject: Hex | null;
  /** pin_hash: the cid string exactly as emitted. */
  rawCid: string | null;
  /** pin_hash: CIDv1 base32 when the string is a valid CID. */
  cid: string | null;
  /** pin_hash with an invalid cid: why, e.g. "has_path: …". */
  invalidReason: string | null;
};

/** Finality of one chain as the indexer reports it. */
export type ChainProgress = {
  chainId: number;
  /** Highest block whose events are in the table. */
  indexedBlock: bigint;
  /** Highest block that can no longer be reorged (Ponder's finalized checkpoint). */
  finalizedBlock: bigint;
};
