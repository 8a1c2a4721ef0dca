import { createPublicClient, http } from "viem";
import type { ChainConfig, QuasarConfig } from "@/core/config/schema.js";
import { type IndexerLag, indexerLag } from "@/core/indexer-lag.js";

/**
 * Measures the indexer's lag per configured chain: the head from the chain's own RPC (its
 * first URL), the indexed block from Ponder's /status. Both are read with short timeouts,
 * so a stalled node or indexer makes the answer "unknown", never a slow probe.
 */
export type IndexerLagProbe = {
  /** One entry per configured chain; a result younger than a second is reused. */
  check(): Promise<IndexerLag[]>;
};

const TIMEOUT_MS = 1_500;
const REUSE_MS = 1_000;

export function createIndexerLagProbe(options: {
  config: Pick<QuasarConfig, "QUASAR_CHAINS" | "QUASAR_INDEXER_MAX_LAG_BLOCKS">;
  /** Ponder's status server, e.g. http://127.0.0.1:42069. */
  indexerUrl: string;
}): IndexerLagProbe {
  const chains = options.config.QUASAR_CHAINS as ChainConfig[];
  const clients = new Map(
    chains.map((chain) => [
      chain.id,
      createPublicClient({
        transport: http(chain.rpc, { timeout: TIMEOUT_MS, retryCount: 0 }),
      }),
    ]),
  );
  let last: { at: number; result: Promise<IndexerLag[]> } | undefined;

  const indexedBlocks = async (): Promise<Map<number, bigint>> => {
    const blocks = new Map<number, bigint>();
    try {
      const response = await fetch(`${options.indexerUrl}/status`, {
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (!response.ok) return blocks;
      const status = (await response.json()) as Record<
        string,
        { id?: number; block?: { number?: number } }
      >;
      for (const chain of Object.values(status)) {
        if (typeof chain.id === "number" && typeof chain.block?.number === "number")
          blocks.set(chain.id, BigInt(chain.block.number));
      }
    } catch {
      // indexer down or busy: its blocks are unknown
    }
    return blocks;
  };

  const measure = async (): Promise<IndexerLag[]> => {
    const [indexed, heads] = await Promise.all([
      indexedBlocks(),
      Promise.all(
        chains.map((chain) =>
          (clients.get(chain.id) as NonNullable<ReturnType<typeof clients.get>>)
            .getBlockNumber({ cacheTime: 0 })
            .catch(() => null),
        ),
      ),
    ]);
    return chains.map((chain, index) =>
      indexerLag(
        chain.id,
        heads[index] ?? null,
        indexed.get(chain.id) ?? null,
        options.config.QUASAR_INDEXER_MAX_LAG_BLOCKS,
      ),
    );
  };

  return {
    check() {
      if (last === undefined || Date.now() - last.at > REUSE_MS)
        last = { at: Date.now(), result: measure() };
      return last.result;
    },
  };
}
