import type { ChainEvent, Hex } from "@/src/events.js";

/**
 * Builds ChainEvent histories for desired-set tests the way the indexer writes them: ids
 * are Ponder checkpoints (timestamp, chain, block, tx index, event type, log index), block
 * timestamps are 12 s apart from a fixed genesis.
 */
export const GENESIS_SECONDS = 1_700_000_000n;
export const BLOCK_SECONDS = 12n;

export const REGISTRY: Hex = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
export const CONTRACT_A: Hex = "0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
export const CONTRACT_B: Hex = "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/** Real CIDv1 base32 strings (raw codec, sha2-256 of the strings "0" to "4"). */
export const CIDS = [
  "bafkreic75tvwn76in44nsutynrwws3dzyln4eoo5j2i3izzj245cp62x5e",
  "bafkreidlq2zhh7zu7tqz224aj37vup2xi6w2j2vcf4outqa6klo3pb23jm",
  "bafkreiguonpdujs6c3xoap2zogfzwxidagoapwfwyupzbwr2mzxoye5lgu",
  "bafkreicoa5aikyv63ofwbtqfyhpm7y5nc23semewpxqb6zalpzdstne7zy",
  "bafkreiclej3xpvg5d7dby34ij5egihicwtisdu75gkglbc2vgh6kzwv7ri",
] as const;

export function blockTime(block: bigint): bigint {
  return GENESIS_SECONDS + block * BLOCK_SECONDS;
}

/** Instant of a block's timestamp. */
export function blockDate(block: bigint): Date {
  return new Date(Number(blockTime(block)) * 1000);
}

export function eventId(chainId: number, block: bigint, logIndex: number): string {
  return [
    blockTime(block).toString().padStart(10, "0"),
    String(chainId).padStart(16, "0"),
    block.toString().padStart(16, "0"),
    "0".padStart(16, "0"),
    "5",
    String(logIndex).padStart(16, "0"),
  ].join("");
}

function txHash(chainId: number, block: bigint, logIndex: number): Hex {
  const body = `${chainId.toString(16)}${block.toString(16).padStart(12, "0")}${logIndex.toString(16).padStart(8, "0")}`;
  return `0x${body.padStart(64, "0")}`;
}

type At = { chainId?: number; block: bigint; log?: number };

function base(at: At) {
  const chainId = at.chainId ?? 1;
  const log = at.log ?? 0;
  return {
    id: eventId(chainId, at.block, log),
    chainId,
    blockNumber: at.block,
    blockHash: txHash(chainId + 1000, at.block, 0),
    blockTimestamp: blockTime(at.block),
    transactionHash: txHash(chainId, at.block, log),
    logIndex: log,
  };
}

export function register(contract: Hex, at: At): ChainEvent {
  return {
    ...base(at),
    contract: REGISTRY,
    kind: "register",
    subject: contract,
    rawCid: null,
    cid: null,
    invalidReason: null,
  };
}

export function unregister(contract: Hex, at: At): ChainEvent {
  return { ...register(contract, at), kind: "unregister" };
}

export function pinHash(contract: Hex, cid: string, at: At): ChainEvent {
  return {
    ...base(at),
    contract,
    kind: "pin_hash",
    subject: null,
    rawCid: cid,
    cid,
    invalidReason: null,
  };
}

export function invalidPinHash(contract: Hex, raw: string, at: At): ChainEvent {
  return { ...pinHash(contract, raw, at), cid: null, invalidReason: "not_a_cid: test" };
}

/** Sorts a history the way the event table is read: by id (a total order). */
export function byId(events: ChainEvent[]): ChainEvent[] {
  return [...events].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
