import { Kysely, PostgresDialect, type PostgresPool, type PostgresPoolClient, sql } from "kysely";
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

/** QUASAR_DB_STATEMENT_TIMEOUT's default: no statement of Quasar's runs this long when healthy. */
export const DEFAULT_STATEMENT_TIMEOUT_MS = 30_000;
/** QUASAR_DB_ACQUIRE_TIMEOUT's default: waiting for a pooled connection or a new one. */
export const DEFAULT_ACQUIRE_TIMEOUT_MS = 5_000;
/**
 * The client-side deadline is the server's plus this margin: a live server cancels the
 * statement itself first (57014); only a server that stopped answering (frozen, partitioned)
 * leaves it to the client.
 */
const CLIENT_DEADLINE_MARGIN_MS = 1_000;

export type ConnectOptions = {
  databaseUrl: string;
  /** Pool size; each process needs only a few connections. */
  maxConnections?: number;
  /** Shown in pg_stat_activity, so an operator can tell Quasar's processes apart. */
  applicationName?: string;
  /**
   * Longest a statement may run (QUASAR_DB_STATEMENT_TIMEOUT). Postgres cancels it at this
   * deadline; if the server does not answer at all, the client gives up a second later and
   * throws away the connection.
   */
  statementTimeoutMs?: number;
  /** Longest wait for a connection, pooled or new (QUASAR_DB_ACQUIRE_TIMEOUT). */
  acquireTimeoutMs?: number;
};

/**
 * Opens Quasar's database (both schemas, one type: db/database.ts) over a pg pool. The
 * caller owns it and must `destroy()` it.
 */
export function connectDatabase(options: ConnectOptions): Kysely<Database> {
  const statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_STATEMENT_TIMEOUT_MS;
  const pool = new pg.Pool({
    connectionString: options.databaseUrl,
    max: options.maxConnections ?? 5,
    application_name: options.applicationName ?? "quasar",
    types,
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + CLIENT_DEADLINE_MARGIN_MS,
    connectionTimeoutMillis: options.acquireTimeoutMs ?? DEFAULT_ACQUIRE_TIMEOUT_MS,
  });
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  pool.on("error", () => {});
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool: discardingBroken(pool) }) });
}

/**
 * A pool whose clients can never crash the process and are never reused once broken.
 *
 * pg listens for a client's 'error' only while it idles in the pool. A checked-out client
 * whose session ends (pg_terminate_backend, a server restart) emits 'error'; with nobody
 * listening that is an uncaught exception. Listening from checkout on is not enough: when a
 * new connection's "ready" and its "terminated" arrive in one chunk, pg hands the client out
 * and emits the error in the same tick, before the caller's code runs again (the fault
 * suite's API died of exactly that). So every client gets a listener for its whole life,
 * from the moment the pool first hands it out ('connect' is emitted before that).
 *
 * A client that failed that way, or whose query hit the client-side deadline (pg leaves that
 * query in flight and the next one would queue behind it), is destroyed on release instead
 * of pooled; kysely releases connections without saying why, so the pool remembers.
 */
function discardingBroken(pool: pg.Pool): PostgresPool {
  const broken = new WeakSet<pg.PoolClient>();
  pool.on("connect", (client) => {
    client.on("error", () => broken.add(client as pg.PoolClient));
  });
  return {
    async connect() {
      const client = await pool.connect();
      const wrapped = {
        query(...args: unknown[]) {
          const result = (client.query as (...a: unknown[]) => unknown)(...args);
          if (result instanceof Promise) {
            result.catch((error: unknown) => {
              if (isDatabaseUnavailable(error)) broken.add(client);
            });
          }
          return result;
        },
        release() {
          client.release(broken.has(client));
        },
      };
      return wrapped as unknown as PostgresPoolClient;
    },
    end: () => pool.end(),
  };
}

/** Socket-level failures: the server is unreachable or the connection dropped. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
]);
/** SQLSTATEs that mean the server cannot serve now, not that the statement is wrong. */
const UNAVAILABLE_SQLSTATES = new Set([
  "57014", // query_canceled: statement_timeout
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up, recovering)
  "53300", // too_many_connections
]);
/** pg's own messages for a connection it lost or could not get in time (no code attached). */
const PG_UNAVAILABLE_MESSAGES = [
  "Query read timeout",
  "Connection terminated",
  "timeout exceeded when trying to connect",
  "Connection terminated due to connection timeout",
  "Client has encountered a connection error and is not queryable",
  "Cannot use a pool after calling end on the pool",
];

/**
 * True when `error` (or one of its causes) says the database is unreachable, frozen or
 * shutting down rather than that a statement is wrong: the caller answers 503 / retries.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let current = error, depth = 0; current && depth < 8; depth++) {
    if (typeof current !== "object") return false;
    const { code, message } = current as { code?: unknown; message?: unknown };
    if (typeof code === "string") {
      if (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith("08"))
        return true;
    }
    if (
      typeof message === "string" &&
      PG_UNAVAILABLE_MESSAGES.some((known) => message.startsWith(known))
    )
      return true;
    if (current instanceof AggregateError && current.errors.some(isDatabaseUnavailable))
      return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
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
