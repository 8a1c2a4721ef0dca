import type { Chain, PublicClient, Transport } from "viem";

/**
 * Which block an auditor treats as final. Ponder (the indexer) never asks the chain: it
 * counts a fixed depth below the head (node_modules/ponder/dist/esm/utils/finality.js):
 * 65 on Ethereum mainnet and its testnets, 200 on Polygon, 240 on Arbitrum, 30 elsewhere
 * (anvil 31337 included). An auditor prefers the chain's own `finalized` tag when the node
 * supports it, and falls back to that same depth.
 */
export function ponderFinalityDepth(chainId: number): number {
  switch (chainId) {
    case 1:
    case 3:
    case 4:
    case 5:
    case 42:
    case 11155111:
      return 65;
    case 137:
    case 80001:
      return 200;
    case 42161:
    case 42170:
    case 421611:
    case 421613:
      return 240;
    default:
      return 30;
  }
}

export type Finality = {
  head: bigint;
  finalizedBlock: bigint;
  /** Where `finalizedBlock` came from. */
  source: "finalized-tag" | "depth";
};

/** The chain's head and finalized block, by the rule above. */
export async function resolveFinality(
  client: PublicClient<Transport, Chain | undefined>,
  chainId: number,
): Promise<Finality> {
  const head = await client.getBlockNumber({ cacheTime: 0 });
  try {
    const block = await client.getBlock({ blockTag: "finalized" });
    if (block.number !== null && block.number <= head) {
      return { head, finalizedBlock: block.number, source: "finalized-tag" };
    }
  } catch {
    // Node without the tag (pre-merge chains, some L2s): fall back to the indexer's depth.
  }
  const depth = BigInt(ponderFinalityDepth(chainId));
  return { head, finalizedBlock: head > depth ? head - depth : 0n, source: "depth" };
}
