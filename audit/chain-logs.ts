import {
  type Chain,
  decodeEventLog,
  type Log,
  type PublicClient,
  parseAbi,
  type Transport,
  toEventSelector,
} from "viem";
import { checkCid } from "@/src/cid.js";
import type { ChainEvent, Hex } from "@/src/events.js";
import { ReplayRpcError } from "./errors.js";
import { eventIdOf } from "./event-id.js";

/**
 * Reads one chain's Quasar history straight from its logs, as an auditor who trusts
 * nothing of Quasar would: the event signatures are written out here (the original
 * Quasar's, byte for byte), the registry's Register/Unregister logs name every storage
 * contract, and that contract's PinHash logs count from the block of its first Register
 * on (what Ponder's factory() does). Positions are computed here too (see event-id.ts).
 */
export const QUASAR_EVENTS_ABI = parseAbi([
  "event PinHash(string cid)",
  "event Register(address contractAddress)",
  "event Unregister(address contractAddress)",
]);
export const PIN_HASH_TOPIC = toEventSelector("PinHash(string)");
export const REGISTER_TOPIC = toEventSelector("Register(address)");
export const UNREGISTER_TOPIC = toEventSelector("Unregister(address)");

export type ReadChainEventsParams = {
  client: PublicClient<Transport, Chain | undefined>;
  chainId: number;
  /** The registry contract whose Register/Unregister logs decide which contracts count. */
  registry: Hex;
  fromBlock: bigint;
  toBlock: bigint;
  /** Blocks per eth_getLogs request; halved on a provider's "too many results". Default 5,000. */
  blockRange?: bigint;
  /** Storage contracts per PinHash request. Default 200. */
  addressesPerRequest?: number;
  signal?: AbortSignal;
  /**
   * Called as ranges complete: blocks read and blocks to read, over both passes (the
   * registry's logs, then the PinHash logs), so the total is twice the span.
   */
  onProgress?: (done: number, total: number) => void;
};

/** Events in chain order (Ponder's id order); PinHash logs with an invalid CID are kept, with cid null. */
export async function readChainEvents(params: ReadChainEventsParams): Promise<ChainEvent[]> {
  const { client, chainId, fromBlock, toBlock, signal } = params;
  if (toBlock < fromBlock) return [];
  const registry = params.registry.toLowerCase() as Hex;
  const range = params.blockRange ?? 5_000n;
  const perRequest = params.addressesPerRequest ?? 200;
  const blocksSpan = toBlock - fromBlock + 1n;
  const total = Number(blocksSpan) * 2;
  let done = 0;
  // Registry pass, then PinHash pass: progress counts both.
  const report = (blocks: bigint) => {
    done += Number(blocks);
    params.onProgress?.(done, total);
  };

  const registrationLogs = await getLogsInRanges({
    client,
    fromBlock,
    toBlock,
    range,
    signal,
    address: [registry],
    topics: [[REGISTER_TOPIC, UNREGISTER_TOPIC]],
    onRange: report,
  });

  const registrations: ChainEventDraft[] = [];
  /** First block each storage contract was registered in: its PinHash logs count from there. */
  const firstRegistered = new Map<Hex, bigint>();
  for (const log of registrationLogs) {
    const decoded = decodeQuasarLog(log);
    if (decoded?.eventName !== "Register" && decoded?.eventName !== "Unregister") continue;
    const subject = decoded.args.contractAddress.toLowerCase() as Hex;
    const blockNumber = log.blockNumber as bigint;
    if (decoded.eventName === "Register" && !firstRegistered.has(subject)) {
      firstRegistered.set(subject, blockNumber);
    }
    registrations.push({
      log,
      kind: decoded.eventName === "Register" ? "register" : "unregister",
      subject,
      rawCid: null,
    });
  }

  const pinHashes: ChainEventDraft[] = [];
  const contracts = [...firstRegistered.keys()];
  const earliest = contracts.reduce(
    (min, contract) => {
      const block = firstRegistered.get(contract) as bigint;
      return min === undefined || block < min ? block : min;
    },
    undefined as bigint | undefined,
  );
  if (earliest !== undefined) {
    // Blocks before the first registration hold no PinHash that counts: read as done.
    if (earliest > fromBlock) report(earliest - fromBlock);
    for (let index = 0; index < contracts.length; index += perRequest) {
      const batch = contracts.slice(index, index + perRequest);
      const logs = await getLogsInRanges({
        client,
        fromBlock: laterOf(earliest, fromBlock),
        toBlock,
        range,
        signal,
        address: batch,
        topics: [[PIN_HASH_TOPIC]],
        onRange: index === 0 ? report : undefined,
      });
      for (const log of logs) {
        const contract = log.address.toLowerCase() as Hex;
        const since = firstRegistered.get(contract);
        if (since === undefined || (log.blockNumber as bigint) < since) continue;
        const decoded = decodeQuasarLog(log);
        if (decoded?.eventName !== "PinHash") continue;
        pinHashes.push({ log, kind: "pin_hash", subject: null, rawCid: decoded.args.cid });
      }
    }
  }
  params.onProgress?.(total, total);

  const drafts = [...registrations, ...pinHashes];
  const blocks = await blockHeaders(
    client,
    drafts.map((draft) => draft.log.blockNumber as bigint),
    signal,
  );
  // Logs come from several requests: a reorg between them would mix two chains. Every log's
  // block hash must be the block the header request saw, or the replay is not one chain.
  for (const draft of drafts) {
    const header = blocks.get(draft.log.blockNumber as bigint);
    if (header?.hash !== (draft.log.blockHash as Hex).toLowerCase()) {
      throw new ReplayRpcError(`block ${draft.log.blockNumber} changed during the replay`, {
        details: "the chain reorganised while logs were read; run the replay again",
      });
    }
  }
  const timestamps = new Map([...blocks].map(([number, header]) => [number, header.timestamp]));
  const events = drafts.map((draft) => toChainEvent(draft, chainId, timestamps));
  events.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return events;
}

/** The larger of two block numbers (Math.max takes no bigint). */
function laterOf(a: bigint, b: bigint): bigint {
  return a > b ? a : b;
}

type ChainEventDraft = {
  log: Log;
  kind: ChainEvent["kind"];
  subject: Hex | null;
  rawCid: string | null;
};

function decodeQuasarLog(log: Log) {
  try {
    return decodeEventLog({ abi: QUASAR_EVENTS_ABI, data: log.data, topics: log.topics });
  } catch {
    // A log with the right topic but undecodable data: Ponder skips it too.
    return undefined;
  }
}

function toChainEvent(
  draft: ChainEventDraft,
  chainId: number,
  timestamps: ReadonlyMap<bigint, bigint>,
): ChainEvent {
  const { log } = draft;
  const blockNumber = log.blockNumber as bigint;
  const blockTimestamp = timestamps.get(blockNumber) as bigint;
  const id = eventIdOf({
    blockTimestamp,
    chainId,
    blockNumber,
    transactionIndex: log.transactionIndex as number,
    logIndex: log.logIndex as number,
  });
  const base = {
    id,
    chainId,
    blockNumber,
    blockHash: (log.blockHash as Hex).toLowerCase() as Hex,
    blockTimestamp,
    transactionHash: (log.transactionHash as Hex).toLowerCase() as Hex,
    logIndex: log.logIndex as number,
    contract: log.address.toLowerCase() as Hex,
    kind: draft.kind,
    subject: draft.subject,
  };
  if (draft.rawCid === null) return { ...base, rawCid: null, cid: null, invalidReason: null };
  const check = checkCid(draft.rawCid);
  return {
    ...base,
    rawCid: draft.rawCid,
    cid: check.valid ? check.cid : null,
    invalidReason: check.valid ? null : `${check.reason}: ${check.detail}`,
  };
}

type RangeQuery = {
  client: PublicClient<Transport, Chain | undefined>;
  fromBlock: bigint;
  toBlock: bigint;
  range: bigint;
  signal: AbortSignal | undefined;
  address: Hex[];
  topics: [Hex[]];
  /** Called with the number of blocks of each range read. */
  onRange: ((blocks: bigint) => void) | undefined;
};

/** eth_getLogs over [fromBlock, toBlock] in ranges; a range a provider refuses as too large is split. */
async function getLogsInRanges(query: RangeQuery): Promise<Log[]> {
  const logs: Log[] = [];
  for (let start = query.fromBlock; start <= query.toBlock; start += query.range) {
    const end = start + query.range - 1n < query.toBlock ? start + query.range - 1n : query.toBlock;
    logs.push(...(await getLogsSplitting(query, start, end)));
    query.onRange?.(end - start + 1n);
  }
  return logs;
}

async function getLogsSplitting(query: RangeQuery, from: bigint, to: bigint): Promise<Log[]> {
  query.signal?.throwIfAborted();
  try {
    return await query.client
      .request({
        method: "eth_getLogs",
        params: [
          {
            address: query.address,
            topics: query.topics,
            fromBlock: `0x${from.toString(16)}`,
            toBlock: `0x${to.toString(16)}`,
          },
        ],
      })
      .then((raw) => (raw as RawLog[]).map(parseRawLog));
  } catch (error) {
    if (from < to && isTooLarge(error)) {
      // Providers cap results or ranges ("query returned more than 10000 results"): halve.
      const middle = from + (to - from) / 2n;
      return [
        ...(await getLogsSplitting(query, from, middle)),
        ...(await getLogsSplitting(query, middle + 1n, to)),
      ];
    }
    throw new ReplayRpcError(`eth_getLogs failed for block ${from}`, { cause: error });
  }
}

/** Whether a provider refused the request for its size (then a smaller range may pass). */
function isTooLarge(error: unknown): boolean {
  const text =
    error instanceof Error ? `${error.message} ${String(error.cause ?? "")}` : String(error);
  return /more than|too many|limit|range|exceed|response size|timeout|timed out/i.test(text);
}

type RawLog = {
  address: Hex;
  blockHash: Hex;
  blockNumber: Hex;
  data: Hex;
  logIndex: Hex;
  transactionHash: Hex;
  transactionIndex: Hex;
  topics: Hex[];
  removed?: boolean;
};

function parseRawLog(raw: RawLog): Log {
  return {
    address: raw.address,
    blockHash: raw.blockHash,
    blockNumber: BigInt(raw.blockNumber),
    data: raw.data,
    logIndex: Number(raw.logIndex),
    transactionHash: raw.transactionHash,
    transactionIndex: Number(raw.transactionIndex),
    topics: raw.topics as [Hex, ...Hex[]],
    removed: raw.removed ?? false,
  };
}

/** Timestamp and hash of the given blocks, fetched a few at a time. */
async function blockHeaders(
  client: PublicClient<Transport, Chain | undefined>,
  blockNumbers: bigint[],
  signal: AbortSignal | undefined,
): Promise<Map<bigint, { timestamp: bigint; hash: string }>> {
  const unique = [...new Set(blockNumbers)];
  const result = new Map<bigint, { timestamp: bigint; hash: string }>();
  const CONCURRENCY = 8;
  let next = 0;
  const worker = async () => {
    while (next < unique.length) {
      signal?.throwIfAborted();
      const blockNumber = unique[next++] as bigint;
      try {
        const block = await client.getBlock({ blockNumber });
        result.set(blockNumber, {
          timestamp: block.timestamp,
          hash: (block.hash ?? "").toLowerCase(),
        });
      } catch (error) {
        throw new ReplayRpcError(`eth_getBlockByNumber failed for block ${blockNumber}`, {
          cause: error,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, unique.length) }, worker));
  return result;
}
