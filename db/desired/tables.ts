import type { ColumnType } from "kysely";
import type { DesiredReasonJson } from "@/core/desired/reasons.js";

/**
 * The desired set's tables (db/migrations/0001_desired.ts) as kysely sees them,
 * for queries on `db.withSchema(QUASAR_RECONCILER_SCHEMA)`. int8 columns read as bigint
 * with connectDatabase's parser, as strings with others: convert with Number()/BigInt().
 */
type Int8 = ColumnType<bigint | string, bigint | number, bigint | number>;
type Timestamp = ColumnType<Date, Date, Date>;

export type OptimisticPinTable = {
  id: ColumnType<bigint | string, never, never>;
  cid: string;
  created_at: Timestamp;
  expires_at: Timestamp;
  size: Int8;
  uploader: string;
  backend_id: string;
};

export type OffchainRegistrationTable = {
  id: ColumnType<bigint | string, never, never>;
  chain_id: Int8;
  contract: string;
  action: "register" | "unregister";
  created_at: Timestamp;
  actor: string;
};

export type RegistrationEventTable = {
  event_id: string;
  chain_id: Int8;
  contract: string;
  action: "register" | "unregister";
  block_number: Int8;
  block_timestamp: Int8;
  transaction_hash: string;
};

export type PinRefTable = {
  event_id: string;
  cid: string;
  chain_id: Int8;
  contract: string;
  block_number: Int8;
  block_timestamp: Int8;
  transaction_hash: string;
};

export type ContractStandingTable = {
  chain_id: Int8;
  contract: string;
  standing_id: string | null;
  standing_final: boolean;
};

export type DesiredCidTable = {
  cid: string;
  reasons: ColumnType<DesiredReasonJson[], string, string>;
  next_change_at: Timestamp | null;
  is_confirmed: boolean;
  is_pending: boolean;
  is_optimistic: boolean;
  is_demoted: boolean;
  /** Held by a Pinning Service API request (migration 0007). */
  is_psa: ColumnType<boolean, boolean | undefined, boolean>;
  /** The answer used an unfinalized PinHash: re-evaluated every step (migration 0003). */
  uses_tail: ColumnType<boolean, boolean | undefined, boolean>;
  updated_at: Timestamp;
};

export type DesiredCursorTable = {
  chain_id: Int8;
  folded_event_id: string | null;
  folded_block: Int8;
  updated_at: Timestamp;
};

export type DesiredTables = {
  optimistic_pin: OptimisticPinTable;
  offchain_registration: OffchainRegistrationTable;
  desired_dirty_cid: { cid: string };
  desired_dirty_contract: { chain_id: Int8; contract: string };
  registration_event: RegistrationEventTable;
  pin_ref: PinRefTable;
  contract_standing: ContractStandingTable;
  desired_cid: DesiredCidTable;
  desired_cursor: DesiredCursorTable;
};
