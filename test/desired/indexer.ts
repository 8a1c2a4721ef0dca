import { type Kysely, sql } from "kysely";
import type { ChainEvent } from "@/src/events.js";
import { blockTime } from "./history.js";

/**
 * The indexer's contract (ponder.schema.ts + Ponder's _ponder_checkpoint), recreated in a
 * test schema so the desired store is tested on real Postgres without running Ponder.
 * The column layout is what Ponder 0.17 writes; the end-to-end suites run Ponder itself.
 */
export async function createIndexerTables<T>(db: Kysely<T>, schema: string): Promise<void> {
  await sql`create schema if not exists ${sql.id(schema)}`.execute(db);
  await sql`create table ${sql.id(schema, "event")} (
    id text primary key,
    chain_id int8 not null,
    block_number int8 not null,
    block_hash text not null,
    block_timestamp int8 not null,
    transaction_hash text not null,
    log_index integer not null,
    contract text not null,
    kind text not null,
    subject text,
    raw_cid text,
    cid text,
    invalid_reason text
  )`.execute(db);
  await sql`create index on ${sql.id(schema, "event")} (chain_id, block_number)`.execute(db);
  await sql`create table ${sql.id(schema, "_ponder_checkpoint")} (
    chain_name text primary key,
    chain_id int8 not null,
    safe_checkpoint text not null,
    latest_checkpoint text not null,
    finalized_checkpoint text not null
  )`.execute(db);
}

/** Inserts events as the indexer does (multi-row, keyed by id). */
export async function insertEvents<T>(
  db: Kysely<T>,
  schema: string,
  events: readonly ChainEvent[],
): Promise<void> {
  for (let start = 0; start < events.length; start += 2_000) {
    const rows = events
      .slice(start, start + 2_000)
      .map(
        (e) =>
          sql`(${e.id}, ${e.chainId}, ${e.blockNumber}, ${e.blockHash}, ${e.blockTimestamp}, ${e.transactionHash}, ${e.logIndex}, ${e.contract}, ${e.kind}, ${e.subject}, ${e.rawCid}, ${e.cid}, ${e.invalidReason})`,
      );
    await sql`insert into ${sql.id(schema, "event")} values ${sql.join(rows)}`.execute(db);
  }
}

/** Deletes one chain's rows above a block, as Ponder does when it reverts a reorged range. */
export async function revertAbove<T>(
  db: Kysely<T>,
  schema: string,
  chainId: number,
  block: bigint,
): Promise<void> {
  await sql`delete from ${sql.id(schema, "event")} where chain_id = ${chainId} and block_number > ${block}`.execute(
    db,
  );
}

/** A checkpoint at the end of `block` (every later field at its maximum). */
export function blockEndCheckpoint(chainId: number, block: bigint): string {
  return (
    blockTime(block).toString().padStart(10, "0") +
    String(chainId).padStart(16, "0") +
    block.toString().padStart(16, "0") +
    "9".repeat(33)
  );
}

/** Records a chain's progress as Ponder does in _ponder_checkpoint. */
export async function setProgress<T>(
  db: Kysely<T>,
  schema: string,
  chainId: number,
  progress: { indexed: bigint; finalized: bigint },
): Promise<void> {
  const latest = blockEndCheckpoint(chainId, progress.indexed);
  const finalized = blockEndCheckpoint(chainId, progress.finalized);
  await sql`insert into ${sql.id(schema, "_ponder_checkpoint")} values (${`chain${chainId}`}, ${chainId}, ${latest}, ${latest}, ${finalized})
    on conflict (chain_name) do update set latest_checkpoint = excluded.latest_checkpoint, safe_checkpoint = excluded.safe_checkpoint, finalized_checkpoint = excluded.finalized_checkpoint`.execute(
    db,
  );
}
