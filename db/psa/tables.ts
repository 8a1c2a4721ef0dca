import type { ColumnType } from "kysely";

/** Row of psa_request (db/migrations/0007_psa.ts): one live Pinning Service API request. */
export type PsaRequestTable = {
  requestid: string;
  key_id: string;
  /** Normalised (CIDv1 base32): what the desired set and the ledger key on. */
  cid: string;
  /** The CID as the client sent it, answered back unchanged. */
  cid_given: string;
  name: string | null;
  origins: ColumnType<string[], string, string>;
  meta: ColumnType<Record<string, string>, string, string>;
  created: ColumnType<Date, Date, Date>;
  size: ColumnType<bigint | string, bigint | number | undefined, bigint | number>;
};

/** Row of psa_usage: a key's live requests and their known bytes. */
export type PsaUsageTable = {
  key_id: string;
  requests: ColumnType<bigint | string, bigint | number | undefined, bigint | number>;
  bytes: ColumnType<bigint | string, bigint | number | undefined, bigint | number>;
  deletes: ColumnType<bigint | string, bigint | number | undefined, bigint | number>;
};

export type PsaTables = { psa_request: PsaRequestTable; psa_usage: PsaUsageTable };
