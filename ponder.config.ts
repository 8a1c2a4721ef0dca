import { createConfig, factory } from "ponder";
import { getAbiItem } from "viem";
import { DataStoreAbi, StorageRegistryAbi } from "./abis/index.js";
import { loadConfig } from "./core/config/load.js";

/**
 * The indexer: on every configured chain, the registry is indexed as a contract and the
 * storage contracts it registers are discovered with `factory()` on `Register`. A factory's
 * child list only grows, so `Unregister` is recorded as an event and applied where the
 * desired pin set is derived, never by removing children here.
 */
const config = loadConfig(process.env);

// Chains whose history is thrown away and rebuilt (anvil, hardhat, tests): Ponder's RPC
// cache would serve blocks of a previous chain that had the same id.
const LOCAL_CHAIN_IDS = new Set([31337, 1337]);
const isLocal = (chain: { id: number; rpc: string }) =>
  LOCAL_CHAIN_IDS.has(chain.id) ||
  /^(https?|wss?):\/\/(127\.0\.0\.1|localhost|\[::1\])([:/]|$)/.test(chain.rpc);

const registerEvent = getAbiItem({ abi: StorageRegistryAbi, name: "Register" });

export default createConfig({
  database: {
    kind: "postgres",
    connectionString: config.DATABASE_URL,
    // Everything the indexer writes is derived from the chain: a Postgres crash that loses
    // its last commits only makes Ponder index those blocks again, with the same ids and
    // rows. Not waiting for each WAL flush makes the backfill several times faster.
    poolConfig: { options: "-c synchronous_commit=off" },
  },
  // Multichain: each chain advances on its own, and `_ponder_checkpoint` then holds each
  // chain's own finalized checkpoint (omnichain writes one shared checkpoint to every row,
  // from which no per-chain finalized block can be read). Rows of different chains are
  // therefore not inserted in id order; db/read-model/ gives readers a stable horizon.
  ordering: "multichain",
  chains: Object.fromEntries(
    config.QUASAR_CHAINS.map((chain) => [
      chain.name,
      {
        id: chain.id,
        rpc: chain.rpc,
        // A local node answers in microseconds; poll it often so tests see blocks quickly.
        pollingInterval: isLocal(chain) ? 250 : 2_000,
        disableCache: isLocal(chain),
      },
    ]),
  ),
  contracts: {
    Registry: {
      abi: StorageRegistryAbi,
      chain: Object.fromEntries(
        config.QUASAR_CHAINS.map((chain) => [
          chain.name,
          { address: chain.registry, startBlock: chain.startBlock },
        ]),
      ),
    },
    Storage: {
      abi: DataStoreAbi,
      chain: Object.fromEntries(
        config.QUASAR_CHAINS.map((chain) => [
          chain.name,
          {
            address: factory({
              address: chain.registry,
              event: registerEvent,
              parameter: "contractAddress",
            }),
            startBlock: chain.startBlock,
          },
        ]),
      ),
    },
  },
});
