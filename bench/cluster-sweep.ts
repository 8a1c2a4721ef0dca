/**
 * One full sweep of an IPFS Cluster backend in a process of its own, so its peak RSS is the
 * sweep's (Node itself included). Run by bench/cluster.ts; prints one JSON line:
 * `{ sweepSeconds, listed, requeued, error, maxRssMB }`.
 *
 *   tsx bench/cluster-sweep.ts  (settings from DATABASE_URL, QUASAR_RECONCILER_SCHEMA,
 *   QUASAR_INDEXER_SCHEMA, QUASAR_BACKENDS)
 */
import { pino } from "pino";
import { parseBackends } from "@/backends/index.js";
import { loadConfig } from "@/core/config/load.js";
import { connectDatabase } from "@/db/connect.js";
import { createDesiredStore } from "@/db/desired/index.js";
import { createReconciler } from "@/reconciler/engine/engine.js";
import { createReconcilerMetrics } from "@/reconciler/engine/metrics.js";

async function main(): Promise<void> {
  const config = loadConfig({ ...process.env, QUASAR_METRICS_PORT: "0" });
  const db = connectDatabase({
    databaseUrl: config.DATABASE_URL,
    maxConnections: 4,
    applicationName: "bench-cluster-sweep",
  });
  const backends = parseBackends(config.QUASAR_BACKENDS);
  try {
    for (const backend of backends) await backend.open();
    const reconciler = createReconciler({
      common: { logger: pino({ level: "warn" }), metrics: createReconcilerMetrics() },
      db,
      backends,
      desiredStore: createDesiredStore({
        db,
        indexerSchema: config.QUASAR_INDEXER_SCHEMA,
        reconcilerSchema: config.QUASAR_RECONCILER_SCHEMA,
        ttlMs: config.QUASAR_PIN_TTL,
      }),
      config,
    });
    const started = performance.now();
    const report = await reconciler.sweepOnce();
    const sweepSeconds = (performance.now() - started) / 1_000;
    const [first] = report.backends;
    console.log(
      JSON.stringify({
        sweepSeconds,
        listed: first?.listed ?? 0,
        requeued: first?.requeued ?? 0,
        error: first?.error ?? null,
        // resourceUsage().maxRSS is in kilobytes.
        maxRssMB: process.resourceUsage().maxRSS / 1_024,
      }),
    );
  } finally {
    for (const backend of backends) await backend.close();
    await db.destroy();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
