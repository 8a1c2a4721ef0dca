import { pathToFileURL } from "node:url";
import type { DestinationStream } from "pino";
import type { Backend } from "@/backends/backend.js";
import { parseBackends } from "@/backends/index.js";
import { loadConfig } from "@/core/config/load.js";
import type { QuasarConfig } from "@/core/config/schema.js";
import { BaseError, describeError } from "@/core/errors.js";
import { createLogger, type Logger } from "@/core/logger.js";
import { connectDatabase } from "@/db/connect.js";
import { createDesiredStore } from "@/db/desired/index.js";
import { listenForDesiredWork } from "@/db/desired/wakeups.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { createReconciler, type Reconciler } from "./engine/engine.js";
import { createReconcilerMetrics, serveMetrics } from "./engine/metrics.js";
import { ReconcilerStartupError } from "./errors.js";

/**
 * The reconciler process: `npm run reconciler` (tsx reconciler/main.ts) or `quasar reconciler`.
 * Loads the configuration (a bad connection string stops start-up naming it), migrates its
 * schema, opens every backend on its own (one that cannot be opened is down and retried with
 * backoff; the others converge meanwhile), then steps every QUASAR_RECONCILE_INTERVAL and sweeps every
 * QUASAR_FULL_SWEEP_INTERVAL until `signal` aborts; then shuts down within a deadline.
 */
export type RunReconcilerOptions = {
  logger?: Logger;
  /** Called once everything runs (tests, the supervisor). */
  onReady?: (info: { metricsPort: number | undefined; reconciler: Reconciler }) => void;
  /** How long in-flight commands may finish at shutdown (default 10 s). */
  stopGraceMs?: number;
};

/** The reconciler process's logger: the one factory and redact list of every process (core/logger.ts). */
export function createReconcilerLogger(
  config: Pick<QuasarConfig, "QUASAR_LOG_LEVEL">,
  destination?: DestinationStream,
): Logger {
  return createLogger({ level: config.QUASAR_LOG_LEVEL, name: "quasar-reconciler" }, destination);
}

export async function runReconciler(
  config: QuasarConfig,
  signal: AbortSignal,
  options: RunReconcilerOptions = {},
): Promise<void> {
  const logger = options.logger ?? createReconcilerLogger(config);
  let backends: Backend[];
  try {
    backends = parseBackends(config.QUASAR_BACKENDS);
  } catch (error) {
    throw new ReconcilerStartupError("cannot build the storage backends (QUASAR_BACKENDS)", {
      cause: error,
      details: describeError(error),
    });
  }
  const metrics = createReconcilerMetrics();
  const db = connectDatabase({
    databaseUrl: config.DATABASE_URL,
    maxConnections: 4 + backends.length * 2,
    applicationName: "quasar-reconciler",
    statementTimeoutMs: config.QUASAR_DB_STATEMENT_TIMEOUT,
    acquireTimeoutMs: config.QUASAR_DB_ACQUIRE_TIMEOUT,
  });
  const cleanups: (() => Promise<unknown>)[] = [];
  try {
    await migrateToLatest(db, config.QUASAR_RECONCILER_SCHEMA);
    const desiredStore = createDesiredStore({
      db,
      indexerSchema: config.QUASAR_INDEXER_SCHEMA,
      reconcilerSchema: config.QUASAR_RECONCILER_SCHEMA,
      ttlMs: config.QUASAR_PIN_TTL,
      logger,
    });
    const reconciler = createReconciler({
      common: { logger, metrics },
      db,
      backends,
      desiredStore,
      config,
      ...(options.stopGraceMs === undefined ? {} : { stopGraceMs: options.stopGraceMs }),
    });
    let metricsPort: number | undefined;
    if (config.QUASAR_METRICS_PORT !== 0) {
      const server = await serveMetrics(metrics, {
        port: config.QUASAR_METRICS_PORT,
        health: () => reconciler.health(),
      });
      metricsPort = server.port;
      cleanups.push(() => server.close());
      logger.info({
        msg: "metrics served",
        port: server.port,
        paths: ["/metrics", "/health", "/ready"],
      });
    }
    if (signal.aborted) return;
    await reconciler.start();
    cleanups.push(() => reconciler.stop());
    // Uploads, PSA requests and newly indexed chain events are taken at once, not after the
    // interval.
    const wakeups = listenForDesiredWork({
      databaseUrl: config.DATABASE_URL,
      reconcilerSchema: config.QUASAR_RECONCILER_SCHEMA,
      indexerSchema: config.QUASAR_INDEXER_SCHEMA,
      onWake: () => {
        metrics.wakeups.inc();
        reconciler.wake();
      },
      onListening: (listening) => metrics.listening.set(listening ? 1 : 0),
      logger,
    });
    cleanups.push(() => wakeups.close());
    logger.info({
      msg: "reconciler running",
      backends: reconciler.health().backends.map((b) => ({ backend: b.label, up: b.up })),
    });
    options.onReady?.({ metricsPort, reconciler });
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
    logger.info({ msg: "reconciler stopping" });
  } finally {
    // Reverse order: the engine stops (ledger left consistent) before backends and the pool close.
    for (const cleanup of cleanups.reverse()) {
      await cleanup().catch((error: unknown) =>
        logger.warn({ msg: "cleanup failed", err: describeError(error) }),
      );
    }
    // close() is idempotent, and safe on a backend that never opened.
    for (const backend of backends) {
      await backend.close().catch((error: unknown) =>
        logger.warn({
          msg: "backend close failed",
          backend: backend.label,
          err: describeError(error),
        }),
      );
    }
    await db.destroy();
  }
}

/** Runs the process: SIGINT/SIGTERM stop it gracefully; a second signal or the deadline forces exit. */
async function main(): Promise<void> {
  let config: QuasarConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  }
  const logger = createReconcilerLogger(config);
  const controller = new AbortController();
  const SHUTDOWN_DEADLINE_MS = 30_000;
  const onSignal = (name: string) => {
    if (controller.signal.aborted) {
      logger.warn({ msg: "second signal: exiting now", signal: name });
      process.exit(130);
    }
    logger.info({ msg: "shutting down", signal: name });
    controller.abort(new Error(name));
    setTimeout(() => {
      logger.error({ msg: "shutdown deadline passed: exiting" });
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  try {
    await runReconciler(config, controller.signal, { logger });
    process.exit(0);
  } catch (error) {
    logger.fatal({ msg: "reconciler failed", err: describeError(error) });
    if (error instanceof BaseError && error.details) process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  void main();
}
