import { Counter, collectDefaultMetrics, Histogram, Registry } from "prom-client";

/**
 * The API's Prometheus metrics, on a registry of its own (never prom-client's global one, so
 * several apps in one test process, or the API beside the reconciler, never collide).
 */
export type ApiMetrics = {
  readonly registry: Registry;
  /** Requests by method, matched route pattern (not the raw path: bounded cardinality) and status. */
  readonly requests: Counter<"method" | "route" | "status">;
  readonly requestSeconds: Histogram<"method" | "route">;
  /** Uploads by outcome: stored, rejected (client error), failed (backend or database). */
  readonly uploads: Counter<"kind" | "outcome">;
  readonly uploadBytes: Counter<"kind">;
  readonly rateLimited: Counter;
  /** Time spent per upload phase: storing on the backend, recording in Postgres. */
  readonly uploadPhaseSeconds: Histogram<"phase">;
};

export function createApiMetrics(options: { processMetrics?: boolean } = {}): ApiMetrics {
  const registry = new Registry();
  if (options.processMetrics) collectDefaultMetrics({ register: registry, prefix: "quasar_api_" });
  return {
    registry,
    requests: new Counter({
      name: "quasar_api_requests_total",
      help: "HTTP requests by method, route and status",
      labelNames: ["method", "route", "status"],
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: "quasar_api_request_duration_seconds",
      help: "HTTP request duration by method and route",
      labelNames: ["method", "route"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
      registers: [registry],
    }),
    uploads: new Counter({
      name: "quasar_api_uploads_total",
      help: "Uploads (add, dag/put) by kind and outcome",
      labelNames: ["kind", "outcome"],
      registers: [registry],
    }),
    uploadBytes: new Counter({
      name: "quasar_api_upload_bytes_total",
      help: "Bytes stored through uploads",
      labelNames: ["kind"],
      registers: [registry],
    }),
    uploadPhaseSeconds: new Histogram({
      name: "quasar_api_upload_phase_seconds",
      help: "Upload time by phase: store (backend add), look (its existing pin), record (Postgres), pin, confirm (Postgres)",
      labelNames: ["phase"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: "quasar_api_rate_limited_total",
      help: "Requests refused by the rate limit",
      registers: [registry],
    }),
  };
}
