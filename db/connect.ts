import { Kysely, PostgresDialect, sql } from "kysely";
import pg from "pg";
import type { Database } from "./database.js";

// int8 comes back as a string by default; block numbers and sizes are bigint here. Set per
// pool, never on pg's global registry: Ponder executes every file under src/ in its own
// process and must keep its own parsing.
const types = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === pg.types.builtins.INT8 && format !== "binary")
      return (value: string) => BigInt(value);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

export type ConnectOptions = {
  databaseUrl: string;
  /** Pool size; each process needs only a few connections. */
  maxConnections?: number;
  /** Shown in pg_stat_activity, so an operator can tell Quasar's processes apart. */
  applicationName?: string;
};

/**
 * Opens Quasar's database (both schemas, one type: db/database.ts) over a pg pool. The
 * caller owns it and must `destroy()` it.
 */
export function connectDatabase(options: ConnectOptions): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: options.maxConnections ?? 5,
    application_name: options.applicationName ?? "quasar",
    types,
  });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on("error", () => {});
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

/** True when the database answers now. Never throws. */
export async function pingDatabase(db: Kysely<Database>): Promise<boolean> {
  try {
    await sql`select 1`.execute(db);
    return true;
  } catch {
    return false;
  }
}
