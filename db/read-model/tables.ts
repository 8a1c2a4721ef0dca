import type { ColumnType } from "kysely";
import type { Hex } from "@/src/events.js";

/**
 * The indexer's tables as kysely sees them (Ponder writes snake_case column names). Only
 * the read model uses these; everyone else gets `ChainEvent` rows.
 */
export type EventTable = {
  id: string;
  /** int8: a bigint with connectDatabase's parser, a string or number with others. */
  chain_id: ColumnType<bigint | number | string, number, number>;
  block_number: ColumnType<bigint | string, bigint, bigint>;
  block_hash: Hex;
  block_timestamp: ColumnType<bigint | string, bigint, bigint>;
  transaction_hash: Hex;
  log_index: number;
  contract: Hex;
  kind: string;
  subject: Hex | null;
  raw_cid: string | null;
  cid: string | null;
  invalid_reason: string | null;
};

/** Ponder's per-chain progress; checkpoints are 75-character strings (see checkpoint.ts). */
export type PonderCheckpointTable = {
  chain_name: string;
  chain_id: ColumnType<bigint, never, never>;
  safe_checkpoint: string;
  latest_checkpoint: string;
  finalized_checkpoint: string;
};

/** Ponder's metadata; the `app` row's value says whether the backfill is done. */
export type PonderMetaTable = {
  key: string;
  value: { is_ready?: number } & Record<string, unknown>;
};

export type IndexerTables = {
  event: EventTable;
  _ponder_checkpoint: PonderCheckpointTable;
  _ponder_meta: PonderMetaTable;
};
