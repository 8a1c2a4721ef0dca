import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { serve } from "@hono/node-server";
import type { DestinationStream } from "pino";
import { type Backend, parseBackends, requireContent } from "@/backends/index.js";
import { loadConfig } from "@/core/config/load.js";
import type { QuasarConfig } from "@/core/config/schema.js";
import { describeError } from "@/core/errors.js";
import { createLogger, type Logger } from "@/core/logger.js";
import { connectDatabase } from "@/db/connect.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { createReadModel } from "@/db/read-model/index.js";
import { createApp } from "./app.js";
import { createApiMetrics } from "./metrics.js";
import { createSharedRateLimiter } from "./rate-limit.js";
import { createApiStore } from "./store.js";
import { createDashboardSource } from "./ui/source.js";

/**
 * The API process: `npm run api` (tsx api/main.ts) or `quasar api` through runApi.
 * Ponder never loads this file (it loads src/api/index.ts, its own HTTP entry), and nothing runs at import
 * unless the file is the process entry.
 */

/** A running API server. */
export type RunningApi = {
  /** The URL it listens on (the bound port when QUASAR_API_PORT is 0). */
  url: string;
  /** Resolves once the server, the backends and the database pool are closed. */
  closed: Promise<void>;
};

/** The API process's logger: the one factory and redact list of every process (core/logger.ts). */
export function createApiLogger(
  config: Pick<QuasarConfig, "QUASAR_LOG_LEVEL">,
  destination?: DestinationStream,
): Logger {
  return createLogger({ level: config.QUASAR_LOG_LEVEL, name: "quasar-api" }, destination);
}

/** How long in-flight requests get to finish after shutdown begins. */
const SHUTDOWN_GRACE_MS = 10_000;
/** Whole-request timeout: a 1 GiB upload over a slow link must not be cut at Node's 5 min default. */
const REQUEST_TIMEOUT_MS = 60 * 60 * 1000;

/**
 * Starts the API on QUASAR_API_HOST:QUASAR_API_PORT and keeps it running until `signal`
 * aborts; then stops accepting connections, lets in-flight requests finish (bounded), and
 * closes the backends and the database.
 */
export async function runApi(
  config: QuasarConfig,
  signal: AbortSignal,
  options: { logger?: Logger } = {},
): Promise<RunningApi> {
  const logger = options.logger ?? createApiLogger(config);
  const db = connectDatabase({
    databaseUrl: config.DATABASE_URL,
    maxConnections: 10,
    applicationName: "quasar-api",
    statementTimeoutMs: config.QUASAR_DB_STATEMENT_TIMEOUT,
    acquireTimeoutMs: config.QUASAR_DB_ACQUIRE_TIMEOUT,
  });
  const backends: Backend[] = [];
  const cleanup = async () => {
    for (const backend of backends) await backend.close().catch(() => {});
    await db.destroy().catch(() => {});
  };
  try {
    // Idempotent and safe beside a running reconciler: the API may start first.
    await migrateToLatest(db, config.QUASAR_RECONCILER_SCHEMA);
    backends.push(...parseBackends(config.QUASAR_BACKENDS));
    // Uploads are stored on the first backend: one that only pins cannot take them.
    const [first] = backends;
    if (first) requireContent(first, "take uploads (the first backend in QUASAR_BACKENDS)");
    for (const [index, backend] of backends.entries()) {
      try {
        await backend.open();
      } catch (error) {
        // Uploads need the first backend; the others only matter for reads and /readyz.
        if (index === 0) throw error;
        logger.warn({
          msg: "backend did not open; /readyz reports it",
          backend: backend.id,
          err: describeError(error),
        });
      }
    }
  } catch (error) {
    await cleanup();
    throw error;
  }

  const readModel = createReadModel({ db, schema: config.QUASAR_INDEXER_SCHEMA });
  const store = createApiStore({
    db,
    reconcilerSchema: config.QUASAR_RECONCILER_SCHEMA,
    readModel,
    ttlMs: config.QUASAR_PIN_TTL,
  });
  const app = createApp({
    config,
    backends,
    store,
    logger,
    metrics: createApiMetrics({ processMetrics: true }),
    rateLimiter: createSharedRateLimiter({
      limit: config.QUASAR_RATE_LIMIT,
      windowMs: config.QUASAR_RATE_LIMIT_WINDOW,
      db,
      schema: config.QUASAR_RECONCILER_SCHEMA,
      logger,
    }),
    dashboard: createDashboardSource({
      config,
      db,
      backends: backends.map((backend) => ({ id: backend.id, label: backend.label })),
    }),
  });

  const server = serve({
    fetch: app.fetch,
    hostname: config.QUASAR_API_HOST,
    port: config.QUASAR_API_PORT,
    serverOptions: { requestTimeout: REQUEST_TIMEOUT_MS },
  });
  await new Promise<void>((resolve, reject) => {
    server.once("listening", () => resolve());
    server.once("error", reject);
  }).catch(async (error: unknown) => {
    await cleanup();
    throw error;
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  logger.info({ msg: "api listening", url, backends: backends.map((b) => b.id) });

  const closed = new Promise<void>((resolve) => {
    const stop = () => {
      logger.info({ msg: "api stopping" });
      const force = setTimeout(() => {
        if ("closeAllConnections" in server) server.closeAllConnections();
      }, SHUTDOWN_GRACE_MS);
      force.unref();
      if ("closeIdleConnections" in server) server.closeIdleConnections();
      server.close(() => {
        clearTimeout(force);
        void cleanup().then(() => {
          logger.info({ msg: "api stopped" });
          resolve();
        });
      });
    };
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });
  });
  return { url, closed };
}

// Process entry: `tsx api/main.ts`.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const controller = new AbortController();
  for (const name of ["SIGINT", "SIGTERM"] as const) process.once(name, () => controller.abort());
  try {
    const config = loadConfig(process.env);
    const running = await runApi(config, controller.signal);
    await running.closed;
    process.exit(0);
  } catch (error) {
    // The message and its causes, never a stack: start-up errors are read by operators.
    const lines: string[] = [];
    for (let e: unknown = error, depth = 0; e !== undefined && depth < 5; depth++) {
      lines.push(depth === 0 ? describeError(e) : `caused by: ${describeError(e)}`);
      e = e instanceof Error ? e.cause : undefined;
    }
    console.error(lines.join("\n"));
    process.exit(1);
  }
}
