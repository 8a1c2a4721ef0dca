/** The database layer's entry: the one database type and the connection. */
export { type ConnectOptions, connectDatabase, pingDatabase } from "./connect.js";
export type {
  Database,
  DesiredTables,
  IndexerTables,
  LedgerTables,
  QuasarTables,
} from "./database.js";
