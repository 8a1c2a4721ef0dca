import type { BackendHealthTables } from "./backend-health-tables.js";
import type { DesiredTables } from "./desired/tables.js";
import type { KeyTables } from "./keys/tables.js";
import type { LedgerTables } from "./ledger/tables.js";
import type { PsaTables } from "./psa/tables.js";
import type { IndexerTables } from "./read-model/tables.js";

/**
 * Every table Quasar reads or writes, as kysely sees them: the one database type of every
 * layer. The tables live in two schemas, so every query names its schema with
 * `db.withSchema(...)`:
 * - the indexer's schema (QUASAR_INDEXER_SCHEMA, written by Ponder, read only through the
 *   read model): `IndexerTables`;
 * - Quasar's own schema (QUASAR_RECONCILER_SCHEMA, created by db/migrations): `QuasarTables`.
 * No table name occurs in both, so one type serves both schemas without casts.
 */
export type Database = IndexerTables & QuasarTables;

/**
 * Quasar's own schema: the desired set and its inputs (uploads, off-chain registrations,
 * folded chain state), the per-backend pin ledger with its reconcile log, API keys and the
 * Pinning Service API's requests.
 */
export type QuasarTables = DesiredTables &
  LedgerTables &
  BackendHealthTables &
  KeyTables &
  PsaTables;

export type { DesiredTables, IndexerTables, LedgerTables };
