/**
 * Ponder's checkpoint: 75 decimal digits, so string order is chain order.
 * timestamp(10) chainId(16) blockNumber(16) transactionIndex(16) eventType(1) eventIndex(16),
 * as encoded by node_modules/ponder/dist/esm/utils/checkpoint.js (0.17). Ponder's event id
 * is the event's checkpoint; a block's end is the block with every later field at its maximum.
 */
export const CHECKPOINT_LENGTH = 75;

/** Where a checkpoint stands: on which chain, in which block, and whether that block is done. */
export type CheckpointPosition = {
  blockTimestamp: bigint;
  chainId: number;
  blockNumber: bigint;
  /** True when every event of `blockNumber` is at or before the checkpoint (the block's end). */
  blockComplete: boolean;
};

const BLOCK_END_TAIL = "9".repeat(16 + 1 + 16);

/** Decodes a checkpoint, or returns undefined when the string is not one. */
export function decodeCheckpoint(checkpoint: string): CheckpointPosition | undefined {
  if (checkpoint.length !== CHECKPOINT_LENGTH || !/^\d+$/.test(checkpoint)) return undefined;
  return {
    blockTimestamp: BigInt(checkpoint.slice(0, 10)),
    chainId: Number(checkpoint.slice(10, 26)),
    blockNumber: BigInt(checkpoint.slice(26, 42)),
    blockComplete: checkpoint.slice(42) === BLOCK_END_TAIL,
  };
}

/**
 * The highest block whose events are all at or before the checkpoint: its block when the
 * checkpoint is a block's end, else the block before (a batch may stop inside a block).
 */
export function completeBlockOf(position: CheckpointPosition): bigint {
  if (position.blockComplete || position.blockNumber === 0n) return position.blockNumber;
  return position.blockNumber - 1n;
}
