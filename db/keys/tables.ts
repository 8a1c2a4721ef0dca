import type { ColumnType } from "kysely";

type Int8 = ColumnType<bigint | string, bigint | number, bigint | number>;
type Timestamp = ColumnType<Date, Date, Date>;

/** Row of api_key (db/migrations/0007_psa.ts). The secret itself is never stored. */
export type ApiKeyTable = {
  id: string;
  secret_sha256: string;
  label: string;
  quota_pins: Int8 | null;
  quota_bytes: Int8 | null;
  created_at: ColumnType<Date, Date | undefined, Date>;
  last_used_at: Timestamp | null;
  revoked_at: Timestamp | null;
};

export type KeyTables = { api_key: ApiKeyTable };
