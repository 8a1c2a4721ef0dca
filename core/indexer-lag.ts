/**
 * How far the indexer trails one chain's head, and whether that is too far. Pure: the head
 * (read from the chain's RPC) and the indexed block (Ponder's /status or the read model)
 * come from the caller. Unknown on either side means "cannot tell", never "behind".
 */
export type IndexerLag = {
  chainId: number;
  headBlock: bigint | null;
  indexedBlock: bigint | null;
  /** head − indexed, at least 0; null when either is unknown. */
  lagBlocks: number | null;
  /** More than `maxLagBlocks` behind. */
  behind: boolean;
};

export function indexerLag(
  chainId: number,
  headBlock: bigint | null,
  indexedBlock: bigint | null,
  maxLagBlocks: number,
): IndexerLag {
  if (headBlock === null || indexedBlock === null)
    return { chainId, headBlock, indexedBlock, lagBlocks: null, behind: false };
  const lagBlocks = headBlock > indexedBlock ? Number(headBlock - indexedBlock) : 0;
  return { chainId, headBlock, indexedBlock, lagBlocks, behind: lagBlocks > maxLagBlocks };
}
