import { index, onchainTable } from "ponder";

/**
 * The indexer's only table: an append-only history, one row per decoded log, keyed by
 * Ponder's event id (the 75-character checkpoint, so ids sort in chain order across every
 * chain). Handlers only insert; Ponder itself deletes the rows of reorged blocks.
 *
 * Every other process reads it through db/read-model/, never by these column names.
 */
export const event = onchainTable(
  "event",
  (t) => ({
    id: t.text().primaryKey(),
    // int8: some chain ids do not fit in 32 bits.
    chainId: t.int8({ mode: "number" }).notNull(),
    blockNumber: t.int8({ mode: "bigint" }).notNull(),
    blockHash: t.hex().notNull(),
    blockTimestamp: t.int8({ mode: "bigint" }).notNull(),
    transactionHash: t.hex().notNull(),
    logIndex: t.integer().notNull(),
    /** The emitting contract, lowercase. */
    contract: t.hex().notNull(),
    /** 'register' | 'unregister' | 'pin_hash' (EVENT_KINDS in src/events.ts). */
    kind: t.text().notNull(),
    /** register/unregister: the storage contract named by the event, lowercase. */
    subject: t.hex(),
    /** pin_hash: the cid string as emitted (NUL replaced by U+FFFD, which Postgres text cannot hold). */
    rawCid: t.text(),
    /** pin_hash: CIDv1 base32 when the string is a valid CID, else null. */
    cid: t.text(),
    /** pin_hash with an invalid cid: `${reason}: ${detail}`. */
    invalidReason: t.text(),
  }),
  (table) => ({
    // The reconciler and the API look up "which PinHash rows name this CID".
    kindCidIdx: index().on(table.kind, table.cid),
    // Per-chain scans (progress checks, auditors replaying one chain).
    chainBlockIdx: index().on(table.chainId, table.blockNumber),
  }),
);
