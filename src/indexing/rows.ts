import { checkCid } from "../cid.js";
import type { ChainEvent, Hex } from "../events.js";

/**
 * Builds the rows of the indexer's event table from decoded logs. Pure and total: any
 * string a contract can emit becomes a row (invalid ones with a reason), so bad data never
 * stops indexing. Kept apart from the Ponder handlers so it can be unit-tested without a chain.
 */

/** What the indexer keeps of a log's position; the fields Ponder hands every handler. */
export type LogMeta = {
  /** Ponder's event id (its checkpoint): a total order over every chain. */
  id: string;
  chainId: number;
  blockNumber: bigint;
  blockHash: Hex;
  blockTimestamp: bigint;
  transactionHash: Hex;
  logIndex: number;
  /** The emitting contract, in any case. */
  contract: Hex;
};

/**
 * One row of the event table, in the shape `context.db.insert(event).values(...)` takes:
 * exactly the ChainEvent the read model hands every other process.
 */
export type EventRow = ChainEvent;

/** U+FFFD REPLACEMENT CHARACTER: what an unstorable character becomes. */
const REPLACEMENT = "\uFFFD";

/**
 * Makes a string storable in a Postgres `text` column: Postgres rejects U+0000, and a lone
 * UTF-16 surrogate has no UTF-8 form. Both become U+FFFD; everything else is kept as emitted.
 */
export function storableText(raw: string): string {
  return raw.replace(UNSTORABLE, REPLACEMENT);
}

/** NUL, or a high surrogate not followed by a low one, or a low surrogate not preceded by a high one. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly the character Postgres text rejects.
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

function base(
  meta: LogMeta,
): Omit<EventRow, "kind" | "subject" | "rawCid" | "cid" | "invalidReason"> {
  return {
    id: meta.id,
    chainId: meta.chainId,
    blockNumber: meta.blockNumber,
    blockHash: meta.blockHash.toLowerCase() as Hex,
    blockTimestamp: meta.blockTimestamp,
    transactionHash: meta.transactionHash.toLowerCase() as Hex,
    logIndex: meta.logIndex,
    contract: meta.contract.toLowerCase() as Hex,
  };
}

/** Row for `PinHash(string cid)`: the CID normalised when valid, else null and why. */
export function pinHashRow(meta: LogMeta, rawCid: string): EventRow {
  // Classify the string as emitted: a NUL or a lone surrogate can never be part of a
  // valid CID, so the check fails on them before the stored copy replaces them.
  const check = checkCid(rawCid);
  return {
    ...base(meta),
    kind: "pin_hash",
    subject: null,
    rawCid: storableText(rawCid),
    cid: check.valid ? check.cid : null,
    invalidReason: check.valid ? null : storableText(`${check.reason}: ${check.detail}`),
  };
}

/** Row for `Register(address)` / `Unregister(address)`; the address is stored lowercase. */
export function registrationRow(
  meta: LogMeta,
  kind: "register" | "unregister",
  contractAddress: Hex,
): EventRow {
  return {
    ...base(meta),
    kind,
    subject: contractAddress.toLowerCase() as Hex,
    rawCid: null,
    cid: null,
    invalidReason: null,
  };
}
