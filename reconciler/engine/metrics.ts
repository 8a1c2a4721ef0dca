import { createServer, type Server } from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";

/**
 * The reconciler's Prometheus metrics, on a registry of its own (never prom-client's global
 * one, so tests and several reconcilers in one process do not collide). Rates (operations
 * and errors per second) come from the counters through `rate()` in Prometheus.
 */
export type ReconcilerMetrics = {
  registry: Registry;
  /** Rows waiting for a command, per backend and queue (new | retry | failed). */
  queueDepth: Gauge<"backend" | "queue">;
  /** Commands sent to backends, by kind and outcome. */
  operations: Counter<"backend" | "op" | "outcome">;
  errors: Counter<"backend" | "op">;
  /** Ledger rows per backend and status. */
  pins: Gauge<"backend" | "status">;
  desired: Gauge;
  degraded: Gauge;
  /** 1 when the backend answers its probe. */
  backendUp: Gauge<"backend">;
  /** 1 while at least QUASAR_MIN_REPLICAS backends are up. */
  ready: Gauge;
  /** Final blocks of the event table not yet folded into the desired set, per chain. */
  lagBlocks: Gauge<"chain">;
  stepSeconds: Histogram;
  sweepSeconds: Histogram<"backend">;
  /** Wake-ups for work the API queued or the indexer committed (db/desired/wakeups.ts), one more each time listening starts. */
  wakeups: Counter;
  /** 1 while the reconciler listens for them; 0: steps wait for the interval. */
  listening: Gauge;
};

export function createReconcilerMetrics(): ReconcilerMetrics {
  const registry = new Registry();
  const registers = [registry];
  return {
    registry,
    queueDepth: new Gauge({
      name: "quasar_reconciler_queue_depth",
      help: "Ledger rows waiting for a command, per backend and queue",
      labelNames: ["backend", "queue"],
      registers,
    }),
    operations: new Counter({
      name: "quasar_reconciler_operations_total",
      help: "Commands sent to backends (pin, unpin, copy, adopt), by outcome",
      labelNames: ["backend", "op", "outcome"],
      registers,
    }),
    errors: new Counter({
      name: "quasar_reconciler_errors_total",
      help: "Failed backend commands",
      labelNames: ["backend", "op"],
      registers,
    }),
    pins: new Gauge({
      name: "quasar_reconciler_pins",
      help: "Ledger rows per backend and status (pinned, failed, queued, ...)",
      labelNames: ["backend", "status"],
      registers,
    }),
    desired: new Gauge({
      name: "quasar_reconciler_desired_cids",
      help: "CIDs in the desired set",
      registers,
    }),
    degraded: new Gauge({
      name: "quasar_reconciler_degraded_cids",
      help: "Desired CIDs pinned on fewer backends than QUASAR_MIN_REPLICAS",
      registers,
    }),
    backendUp: new Gauge({
      name: "quasar_reconciler_backend_up",
      help: "1 when the backend answers its liveness probe",
      labelNames: ["backend"],
      registers,
    }),
    ready: new Gauge({
      name: "quasar_reconciler_ready",
      help: "1 while enough backends are up to hold QUASAR_MIN_REPLICAS copies of each CID",
      registers,
    }),
    lagBlocks: new Gauge({
      name: "quasar_reconciler_lag_blocks",
      help: "Final blocks in the event table not yet folded into the desired set",
      labelNames: ["chain"],
      registers,
    }),
    stepSeconds: new Histogram({
      name: "quasar_reconciler_step_seconds",
      help: "Duration of one incremental step",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers,
    }),
    sweepSeconds: new Histogram({
      name: "quasar_reconciler_sweep_seconds",
      help: "Duration of one full sweep of one backend",
      labelNames: ["backend"],
      buckets: [0.1, 1, 5, 30, 120, 600],
      registers,
    }),
    wakeups: new Counter({
      name: "quasar_reconciler_wakeups_total",
      help: "Wake-ups for work the API queued or the indexer committed for the desired step (and one each time listening starts), each ending a pause early",
      registers,
    }),
    listening: new Gauge({
      name: "quasar_reconciler_listening",
      help: "1 while the reconciler listens for work the API queues and blocks the indexer commits; 0 means steps wait for QUASAR_RECONCILE_INTERVAL",
      registers,
    }),
  };
}

/** What `/health` and `/ready` answer (the engine's ReconcilerHealth). */
export type HealthAnswer = { ready: boolean };

/**
 * Serves `GET /metrics` on `port` (0 picks a free one), and with `health`: `GET /health`
 * (always 200, each backend up or down with its last error) and `GET /ready` (the same body,
 * 503 while fewer than QUASAR_MIN_REPLICAS backends are up). Resolves once listening.
 */
export async function serveMetrics(
  metrics: ReconcilerMetrics,
  options: { port: number; host?: string; health?: () => HealthAnswer },
): Promise<{ port: number; close(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    const { health } = options;
    if (req.method === "GET" && health && (path === "/health" || path === "/ready")) {
      const answer = health();
      const status = path === "/ready" && !answer.ready ? 503 : 200;
      res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(answer));
      return;
    }
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404).end("not found\n");
      return;
    }
    metrics.registry.metrics().then(
      (body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body),
      (error: unknown) => res.writeHead(500).end(`${String(error)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host ?? "0.0.0.0", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
