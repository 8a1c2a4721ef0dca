import { createConfig, factory } from "ponder";
import {
  createTransport,
  type EIP1193RequestFn,
  fallback,
  getAbiItem,
  HttpRequestError,
  http,
  type Transport,
  webSocket,
} from "viem";
import { DataStoreAbi, StorageRegistryAbi } from "./abis/index.js";
import { loadConfig } from "./core/config/load.js";
import type { ChainConfig } from "./core/config/schema.js";

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

/** A request that gets no answer within this long fails and is retried by Ponder. */
const RPC_TIMEOUT_MS = 10_000;
/**
 * Requests are counted over this window, and spaced evenly within it. The 20 % margin
 * absorbs jitter on the way: requests sent evenly still arrive bunched when a host on the
 * path stalls (measured: 3 of 25 bunched on this loaded 2-core machine), and the provider
 * counts arrivals.
 */
const BUDGET_WINDOW_MS = 1_200;
/** Pause after a 429 that names no Retry-After. */
const RATE_LIMITED_PAUSE_MS = 1_000;

/**
 * The chain's JSON-RPC transport: its URLs in order (viem `fallback`), and at most
 * `maxRequestsPerSecond` requests in any one-second window over all of them.
 *
 * Ponder wraps every transport in its adaptive limiter, which starts at 20 requests/s, climbs
 * only after ten saturated seconds, and lowers itself on every timeout down to about 3/s,
 * where its own rounding keeps it for good (an RPC stall of 30 s wedged the indexer: issue 9).
 * `selfLimited` asks our patch of Ponder (patches/ponder+0.17.7.patch) to leave this
 * transport alone: the budget here is the only limit, and it never shrinks on timeouts.
 */
function budgetedTransport(chain: ChainConfig): Transport {
  // Requests issued together (Ponder fetches a backfill's blocks 25 at a time) go in one
  // HTTP batch when the operator allows it: fewer round trips for Ponder and the node.
  const batch =
    chain.rpcBatchSize !== undefined && chain.rpcBatchSize > 1
      ? { batch: { batchSize: chain.rpcBatchSize } }
      : {};
  const transports = chain.rpcUrls.map((url) =>
    /^wss?:/.test(url)
      ? webSocket(url, { retryCount: 0, timeout: RPC_TIMEOUT_MS })
      : // No cap on an answer's size, as Ponder's own client: viem's default of 10 MB failed
        // every eth_getLogs of a busy range (35 MB for 50,000 PinHash logs) forever.
        http(url, { retryCount: 0, timeout: RPC_TIMEOUT_MS, maxResponseBodySize: false, ...batch }),
  );
  const inner = transports.length === 1 ? (transports[0] as Transport) : fallback(transports);
  const gate = requestGate(chain.maxRequestsPerSecond);
  return (parameters) => {
    const { request } = inner({ ...parameters, retryCount: 0 });
    const budgeted: EIP1193RequestFn = async (args, options) => {
      await gate.take();
      try {
        return await request(args, options);
      } catch (error) {
        if (error instanceof HttpRequestError && error.status === 429) {
          const retryAfter = Number(error.headers?.get("retry-after"));
          gate.pause(retryAfter > 0 ? retryAfter * 1_000 : RATE_LIMITED_PAUSE_MS);
        }
        throw error;
      }
    };
    return createTransport(
      {
        key: "quasar",
        name: "Quasar budgeted JSON-RPC",
        type: "quasar",
        request: budgeted,
        retryCount: 0,
        timeout: RPC_TIMEOUT_MS,
      },
      { selfLimited: true },
    );
  };
}

/**
 * Admits requests one at a time: at most `perSecond` within any BUDGET_WINDOW_MS, spaced at
 * least BUDGET_WINDOW_MS / perSecond apart (a burst at a window's start could meet the last
 * window's late arrivals), and none while paused (the provider answered 429). Unlimited when
 * `perSecond` is undefined.
 */
function requestGate(perSecond: number | undefined) {
  // Whole requests per window: 2.5/s admits 2 per window, 0.5/s one per 2.1 s; never above.
  const capacity =
    perSecond === undefined ? Number.POSITIVE_INFINITY : Math.max(1, Math.floor(perSecond));
  const windowMs =
    perSecond !== undefined && perSecond < 1 ? BUDGET_WINDOW_MS / perSecond : BUDGET_WINDOW_MS;
  const spacingMs = capacity === Number.POSITIVE_INFINITY ? 0 : windowMs / capacity;
  const sent: number[] = [];
  let pausedUntil = 0;
  let queue: Promise<void> = Promise.resolve();
  const admit = async (): Promise<void> => {
    for (;;) {
      const now = performance.now();
      while (sent.length > 0 && (sent[0] as number) <= now - windowMs) sent.shift();
      const lastSent = sent.at(-1);
      const waitMs = Math.max(
        pausedUntil - now,
        sent.length >= capacity ? (sent[0] as number) + windowMs - now : 0,
        lastSent === undefined ? 0 : lastSent + spacingMs - now,
      );
      if (waitMs <= 0) {
        if (capacity !== Number.POSITIVE_INFINITY) sent.push(now);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, Math.ceil(waitMs)));
    }
  };
  return {
    take(): Promise<void> {
      if (capacity === Number.POSITIVE_INFINITY && pausedUntil <= performance.now())
        return Promise.resolve();
      queue = queue.then(admit);
      return queue;
    },
    pause(ms: number): void {
      pausedUntil = Math.max(pausedUntil, performance.now() + ms);
    },
  };
}

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
        rpc: budgetedTransport(chain),
        ...(chain.ethGetLogsBlockRange === undefined
          ? {}
          : { ethGetLogsBlockRange: chain.ethGetLogsBlockRange }),
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
