import type { Kysely } from "kysely";
import type { QuasarConfig } from "@/core/config/schema.js";
import type { Database } from "@/db/database.js";
import { pinsPerMinute, type RecentError, recentErrors } from "@/db/ledger/activity.js";
import { underReplicatedCount } from "@/db/ledger/engine-reads.js";
import { type ReconcileLogEntry, readReconcileLog } from "@/db/ledger/reads.js";
import { type RetryNowOutcome, retryNow } from "@/db/ledger/retry-now.js";
import { type StuckPin, stuckPins } from "@/db/ledger/stuck.js";
import { type UploaderUsage, uploadsByUploader } from "@/db/uploads/usage.js";
import { collectStatusReport, type StatusReport } from "../status-report.js";

export type { StatusReport } from "../status-report.js";

/**
 * What the dashboard reads and the one thing it writes, as a narrow port over the database
 * layer (the routes never see a table). Built once per API process; every answer is fresh
 * except the status report, reused for a moment so a room full of open dashboards polling
 * costs one snapshot per second, not one per browser.
 */
export type DashboardSource = {
  /** The same snapshot `quasar status --json` prints. */
  status(): Promise<StatusReport>;
  /** Pins completed per minute over the last hour, oldest minute first. */
  pinsPerMinute(): Promise<{ minute: Date; pins: number }[]>;
  stuck(limit: number): Promise<{ pins: StuckPin[]; total: number }>;
  /** The reconcile log of one CID (normalised), newest first. */
  reconcileLog(cid: string): Promise<ReconcileLogEntry[]>;
  recentErrors(): Promise<RecentError[]>;
  /** Wanted CIDs with fewer pinned copies than required, and how many are required. */
  replication(): Promise<{ required: number; short: number }>;
  usage(): Promise<UploaderUsage[]>;
  /** Makes a queued or failed pin due now (an admin's action; the caller checks who asks). */
  retryNow(backendId: string, cid: string): Promise<RetryNowOutcome>;
};

export type CreateDashboardSourceParams = {
  config: QuasarConfig;
  db: Kysely<Database>;
  /** The configured backends in order (id → masked label). */
  backends: readonly { id: string; label: string }[];
  /** How long one status snapshot is reused. */
  statusReuseMs?: number;
};

const RECONCILE_LOG_ROWS = 200;
const ERRORS_PER_BACKEND = 5;

export function createDashboardSource(params: CreateDashboardSourceParams): DashboardSource {
  const { config, db } = params;
  const schema = config.QUASAR_RECONCILER_SCHEMA;
  const labels = new Map(params.backends.map((backend) => [backend.id, backend.label]));
  const ids = params.backends.map((backend) => backend.id);
  const reuseMs = params.statusReuseMs ?? 1_000;
  let last: { at: number; report: Promise<StatusReport> } | undefined;
  return {
    status() {
      if (last === undefined || Date.now() - last.at > reuseMs) {
        const report = collectStatusReport({ config, db, labels });
        last = { at: Date.now(), report };
        // A failed snapshot is not reused.
        report.catch(() => {
          if (last?.report === report) last = undefined;
        });
      }
      return last.report;
    },
    pinsPerMinute: () => pinsPerMinute(db, schema, 60),
    stuck: (limit) => stuckPins(db, schema, { olderThanMs: config.QUASAR_UI_STUCK_AFTER, limit }),
    reconcileLog: (cid) => readReconcileLog(db, schema, { cid, limit: RECONCILE_LOG_ROWS }),
    recentErrors: () => recentErrors(db, schema, ERRORS_PER_BACKEND),
    async replication() {
      // QUASAR_MIN_REPLICAS=0 means "every backend", as the reconciler reads it.
      const required =
        config.QUASAR_MIN_REPLICAS === 0
          ? ids.length
          : Math.min(config.QUASAR_MIN_REPLICAS, ids.length);
      const short = await underReplicatedCount(db.withSchema(schema), ids, required);
      return { required, short };
    },
    usage: () => uploadsByUploader(db, schema),
    retryNow: (backendId, cid) =>
      retryNow(db, schema, {
        backendId,
        cid,
        pinDeadlineMs: config.QUASAR_PIN_DEADLINE,
        reason: "retry now, asked from the dashboard",
      }),
  };
}
