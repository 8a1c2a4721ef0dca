import { type Kysely, sql } from "kysely";
import type { Logger } from "pino";
import type { Backend } from "@/backends/backend.js";
import type { QuasarConfig } from "@/core/config/schema.js";
import { describeError } from "@/core/errors.js";
import type { Database } from "@/db/database.js";
import type { DesiredChange, DesiredStore } from "@/db/desired/index.js";
import { applyChanges, type LedgerChange, type LedgerRow, ledgerDb } from "@/db/ledger/ledger.js";
import { IN_FLIGHT_STATUSES, type PinEvent, WANTED_STATUSES } from "@/db/ledger/pin-status.js";
import { queueDepths } from "@/db/ledger/queue.js";
import { diffPins } from "../diff.js";
import type { ReconcilerMetrics } from "./metrics.js";
import { type BackendWorker, createBackendWorker, type WorkerPolicy } from "./worker.js";

/**
 * The convergence engine: turns desired-set changes into ledger work for every backend, runs
 * one worker per backend, and periodically sweeps each backend's real pins against the
 * desired set to repair drift. Incremental by default: a step costs what changed.
 */

/** Shared services, passed down rather than imported. */
export type ReconcilerCommon = { logger: Logger; metrics: ReconcilerMetrics };

export type EngineConfig = Pick<
  QuasarConfig,
  | "QUASAR_RECONCILER_SCHEMA"
  | "QUASAR_MIN_REPLICAS"
  | "QUASAR_RECONCILE_INTERVAL"
  | "QUASAR_FULL_SWEEP_INTERVAL"
  | "QUASAR_PIN_CONCURRENCY"
  | "QUASAR_PIN_INACTIVITY_TIMEOUT"
  | "QUASAR_PIN_DEADLINE"
  | "QUASAR_RETRY_BASE"
  | "QUASAR_RETRY_MAX"
  | "QUASAR_FAILED_RETRY_INTERVAL"
>;

export type CreateReconcilerParams = {
  common: ReconcilerCommon;
  /** Quasar's database (connectDatabase); the engine scopes it to the reconciler schema. */
  db: Kysely<Database>;
  /** Opened by the caller. */
  backends: readonly Backend[];
  desiredStore: DesiredStore;
  config: EngineConfig;
  /** On stop: how long in-flight commands may finish before being abandoned (default 10 s). */
  stopGraceMs?: number;
  now?: () => Date;
};

export type StepReport = { changes: number; ledgerChanges: number; ms: number };
export type SweepReport = {
  backends: {
    backendId: string;
    listed: number;
    requeued: number;
    unwanted: number;
    error?: string;
  }[];
  ms: number;
};
export type DegradedCid = { cid: string; replicas: number; required: number };

export type Reconciler = {
  /** Re-drives commands left in flight by a crash, sweeps once, then runs the loops until stop(). */
  start(): Promise<void>;
  /** Stops the loops; in-flight commands finish or are abandoned within the grace period. */
  stop(): Promise<void>;
  /** One incremental step: the desired store's changes into ledger work. */
  stepOnce(): Promise<StepReport>;
  /** One full sweep of every backend (streamed listing vs the desired set). */
  sweepOnce(): Promise<SweepReport>;
  /** Resolves when every worker is idle and no ledger row is due (tests, benchmarks). */
  waitIdle(options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<void>;
  /** Desired CIDs pinned on fewer backends than required. */
  degradedCids(options?: { limit?: number }): Promise<DegradedCid[]>;
  /** Refreshes the gauges (desired, pins per status, queue depth, degraded, lag). */
  refreshMetrics(): Promise<void>;
  readonly workers: readonly BackendWorker[];
};

const APPLY_CHUNK = 500;
const METRICS_REFRESH_MS = 10_000;

export function createReconciler(params: CreateReconcilerParams): Reconciler {
  const { common, config, desiredStore, backends } = params;
  const { logger, metrics } = common;
  const db = ledgerDb(params.db, config.QUASAR_RECONCILER_SCHEMA);
  const now = params.now ?? (() => new Date());
  const pinDeadlineMs = config.QUASAR_PIN_DEADLINE;
  const backendIds = backends.map((b) => b.id);
  const requiredReplicas =
    config.QUASAR_MIN_REPLICAS === 0
      ? backends.length
      : Math.min(config.QUASAR_MIN_REPLICAS, backends.length);
  const policy: Omit<WorkerPolicy, "foreignPinCheck"> = {
    concurrency: config.QUASAR_PIN_CONCURRENCY,
    inactivityTimeoutMs: config.QUASAR_PIN_INACTIVITY_TIMEOUT,
    pinDeadlineMs,
    retry: { baseMs: config.QUASAR_RETRY_BASE, maxMs: config.QUASAR_RETRY_MAX },
    failedRetryIntervalMs: config.QUASAR_FAILED_RETRY_INTERVAL,
    pollMs: Math.min(config.QUASAR_RECONCILE_INTERVAL, 1_000),
    stopGraceMs: params.stopGraceMs ?? 10_000,
  };
  const workers = backends.map((backend) =>
    createBackendWorker({
      backend,
      db,
      logger,
      metrics,
      policy: { ...policy, foreignPinCheck: !backend.exclusive },
      peers: () => backends,
      now,
    }),
  );

  let lifecycle: AbortController | undefined;
  let loops: Promise<unknown>[] = [];
  // Steps and sweeps never overlap: a sweep judges "not desired" only after the step before it.
  let serial: Promise<unknown> = Promise.resolve();
  const exclusive = <T>(task: () => Promise<T>): Promise<T> => {
    const run = serial.then(task, task);
    serial = run.catch(() => {});
    return run;
  };

  /** Applies changes in chunks, one transaction each; workers start on a chunk as soon as it commits. */
  async function apply(changes: LedgerChange[]): Promise<number> {
    let applied = 0;
    for (let i = 0; i < changes.length; i += APPLY_CHUNK) {
      const chunk = changes.slice(i, i + APPLY_CHUNK);
      const results = await db
        .transaction()
        .execute((trx) => applyChanges(trx, chunk, { now: now(), pinDeadlineMs }));
      const changed = results.filter((r) => r.applied && r.from !== r.to).length;
      applied += changed;
      if (changed > 0) for (const worker of workers) worker.wake();
    }
    return applied;
  }

  function changesFor(change: DesiredChange): LedgerChange[] {
    const reason = change.desired
      ? `desired: ${[...new Set(change.reasons.map((r) => r.kind))].join(", ") || "reason unknown"}`
      : "no longer desired";
    return backends.map((backend) => ({
      backendId: backend.id,
      cid: change.cid,
      event: change.desired ? "want" : "unwant",
      log: { decision: change.desired ? "queue" : "unpin", reason, outcome: "ok" },
    }));
  }

  /** unwant for pins Quasar may hold, release (no command) for the others. */
  async function resolveUnwanted(changes: LedgerChange[]): Promise<LedgerChange[]> {
    const unwanted = changes.filter((c) => c.event === "unwant");
    if (unwanted.length === 0) return changes;
    const owned = new Set<string>();
    const cids = [...new Set(unwanted.map((c) => c.cid))];
    for (let i = 0; i < cids.length; i += 5_000) {
      const rows = await db
        .selectFrom("pin_ledger")
        .select(["backend_id", "cid", "owned", "status"])
        .where("cid", "=", sql<string>`any(${cids.slice(i, i + 5_000)}::text[])`)
        .execute();
      for (const row of rows)
        if (row.owned || row.status === "pinning") owned.add(`${row.backend_id} ${row.cid}`);
    }
    return changes.map((c) => {
      if (c.event !== "unwant" || owned.has(`${c.backendId} ${c.cid}`)) return c;
      return {
        ...c,
        event: "release" as PinEvent,
        log: {
          decision: "skip_foreign",
          reason: "no longer desired; not pinned by Quasar",
          outcome: "ok" as const,
        },
      };
    });
  }

  async function stepOnce(): Promise<StepReport> {
    return exclusive(async () => {
      const started = performance.now();
      const changes = await desiredStore.step({ now: now(), signal: lifecycle?.signal });
      const ledgerChanges = await resolveUnwanted(changes.flatMap(changesFor));
      const applied = await apply(ledgerChanges);
      const ms = performance.now() - started;
      metrics.stepSeconds.observe(ms / 1_000);
      if (changes.length > 0) logger.debug({ msg: "step", changes: changes.length, applied, ms });
      return { changes: changes.length, ledgerChanges: applied, ms };
    });
  }

  async function sweepBackend(
    backend: Backend,
    startedAt: Date,
  ): Promise<SweepReport["backends"][number]> {
    const timer = metrics.sweepSeconds.startTimer({ backend: backend.label });
    const signal = lifecycle?.signal;
    let listed = 0;
    async function* listing() {
      for await (const pin of backend.listPins({ signal })) {
        listed++;
        yield pin.cid.toV1().toString();
      }
    }
    // The desired set is at least as new as startedAt (the step before the sweep); an unpin
    // candidate is acted on only when its ledger row predates startedAt (below). Pages cost one
    // await per 20,000 CIDs instead of one per CID.
    const { toPin, toUnpin } = await diffPins(
      desiredStore.streamDesiredPages({ signal }),
      listing(),
      { signal },
    );
    let requeued = 0;
    let unwanted = 0;
    for (let i = 0; i < toPin.length; i += 5_000) {
      const cids = toPin.slice(i, i + 5_000);
      const rows = await rowsOf(backend.id, cids);
      const changes: LedgerChange[] = cids.map((cid) => {
        const row = rows.get(cid);
        if (row?.status === "pinned") {
          return {
            backendId: backend.id,
            cid,
            event: "lost",
            log: {
              decision: "requeue",
              reason: "unexpectedly unpinned: missing from the backend",
              outcome: "ok",
            },
          };
        }
        return {
          backendId: backend.id,
          cid,
          event: "want",
          log: {
            decision: "queue",
            reason: "desired, missing from the backend (sweep)",
            outcome: "ok",
          },
        };
      });
      requeued += await apply(changes);
    }
    for (let i = 0; i < toUnpin.length; i += 5_000) {
      const cids = toUnpin.slice(i, i + 5_000);
      const rows = await rowsOf(backend.id, cids);
      const changes: LedgerChange[] = [];
      for (const cid of cids) {
        const row = rows.get(cid);
        // Only pins Quasar created, unchanged since before this sweep began (an upload recorded
        // meanwhile may not be in the desired set yet). Foreign pins are never touched.
        if (!row?.owned || row.updated_at.getTime() >= startedAt.getTime()) continue;
        if (!(WANTED_STATUSES as readonly string[]).includes(row.status)) continue;
        changes.push({
          backendId: backend.id,
          cid,
          event: "unwant",
          log: { decision: "unpin", reason: "not desired, still pinned (sweep)", outcome: "ok" },
        });
      }
      unwanted += await apply(changes);
    }
    timer();
    if (requeued + unwanted > 0) {
      logger.info({ msg: "sweep repaired drift", backend: backend.label, requeued, unwanted });
    }
    return { backendId: backend.id, listed, requeued, unwanted };
  }

  async function rowsOf(backendId: string, cids: string[]): Promise<Map<string, LedgerRow>> {
    const rows = await db
      .selectFrom("pin_ledger")
      .selectAll()
      .where("backend_id", "=", backendId)
      .where("cid", "=", sql<string>`any(${cids}::text[])`)
      .execute();
    return new Map(rows.map((r) => [r.cid, r]));
  }

  async function sweepOnce(): Promise<SweepReport> {
    return exclusive(async () => {
      const started = performance.now();
      const startedAt = now();
      // The step before the sweep makes the desired set at least as new as startedAt.
      const changes = await desiredStore.step({ now: startedAt, signal: lifecycle?.signal });
      await apply(await resolveUnwanted(changes.flatMap(changesFor)));
      const reports: SweepReport["backends"] = [];
      for (const [i, backend] of backends.entries()) {
        // A backend that is down is swept next time; the others go on.
        if (
          !(workers[i] as BackendWorker).isUp() ||
          !(await backend.ping(lifecycle?.signal).catch(() => false))
        ) {
          reports.push({
            backendId: backend.id,
            listed: 0,
            requeued: 0,
            unwanted: 0,
            error: "unavailable",
          });
          continue;
        }
        try {
          reports.push(await sweepBackend(backend, startedAt));
        } catch (error) {
          logger.warn({ msg: "sweep failed", backend: backend.label, err: describeError(error) });
          reports.push({
            backendId: backend.id,
            listed: 0,
            requeued: 0,
            unwanted: 0,
            error: describeError(error),
          });
        }
      }
      for (const worker of workers) worker.wake();
      return { backends: reports, ms: performance.now() - started };
    });
  }

  /** Commands a crash left in flight go back to their queues; pin and unpin are idempotent. */
  async function recoverInFlight(): Promise<number> {
    const rows = await db
      .selectFrom("pin_ledger")
      .select(["backend_id", "cid", "status"])
      .where("status", "in", [...IN_FLIGHT_STATUSES])
      .where("backend_id", "=", sql<string>`any(${backendIds}::text[])`)
      .execute();
    const changes: LedgerChange[] = rows.map((row) => ({
      backendId: row.backend_id,
      cid: row.cid,
      event: "recover",
      expect: row.status,
      log: { decision: "recover", reason: "in flight when the reconciler stopped", outcome: "ok" },
    }));
    await apply(changes);
    if (rows.length > 0)
      logger.info({ msg: "re-driving commands left in flight", count: rows.length });
    return rows.length;
  }

  async function degradedCids(options: { limit?: number } = {}): Promise<DegradedCid[]> {
    const rows = await db
      .selectFrom("pin_ledger")
      .select(["cid", sql<number>`count(*) filter (where status = 'pinned')::int`.as("replicas")])
      .where("status", "in", [...WANTED_STATUSES])
      .where("backend_id", "=", sql<string>`any(${backendIds}::text[])`)
      .groupBy("cid")
      .having(sql<number>`count(*) filter (where status = 'pinned')`, "<", requiredReplicas)
      .orderBy("cid")
      .limit(options.limit ?? 1_000)
      .execute();
    return rows.map((r) => ({ cid: r.cid, replicas: r.replicas, required: requiredReplicas }));
  }

  async function refreshMetrics(): Promise<void> {
    const [depths, statuses, counts, lag, degraded] = await Promise.all([
      queueDepths(db),
      db
        .selectFrom("pin_ledger")
        .select(["backend_id", "status", sql<number>`count(*)::int`.as("count")])
        .groupBy(["backend_id", "status"])
        .execute(),
      desiredStore.counts(),
      desiredStore.lag(),
      db
        .selectFrom(
          db
            .selectFrom("pin_ledger")
            .select("cid")
            .where("status", "in", [...WANTED_STATUSES])
            .where("backend_id", "=", sql<string>`any(${backendIds}::text[])`)
            .groupBy("cid")
            .having(sql<number>`count(*) filter (where status = 'pinned')`, "<", requiredReplicas)
            .as("d"),
        )
        .select(sql<number>`count(*)::int`.as("count"))
        .executeTakeFirst(),
    ]);
    const labelOf = new Map(backends.map((b) => [b.id, b.label]));
    metrics.queueDepth.reset();
    for (const d of depths) {
      const backend = labelOf.get(d.backendId);
      if (backend) metrics.queueDepth.set({ backend, queue: d.queue }, d.count);
    }
    metrics.pins.reset();
    for (const s of statuses) {
      const backend = labelOf.get(s.backend_id);
      if (backend) metrics.pins.set({ backend, status: s.status }, s.count);
    }
    metrics.desired.set(counts.desired);
    metrics.degraded.set(degraded?.count ?? 0);
    for (const chain of lag) {
      metrics.lagBlocks.set(
        { chain: String(chain.chainId) },
        Number(chain.finalizedBlock - chain.foldedBlock),
      );
    }
  }

  async function loop(signal: AbortSignal): Promise<void> {
    let lastSweep = Date.now();
    let lastMetrics = 0;
    let refreshing: Promise<void> | undefined;
    while (!signal.aborted) {
      try {
        if (Date.now() - lastSweep >= config.QUASAR_FULL_SWEEP_INTERVAL) {
          lastSweep = Date.now();
          await sweepOnce();
        } else {
          await stepOnce();
        }
        // Gauges come from aggregate queries over the ledger: refreshed beside the steps, never
        // delaying them, and never two at once.
        if (!refreshing && Date.now() - lastMetrics >= METRICS_REFRESH_MS) {
          lastMetrics = Date.now();
          refreshing = refreshMetrics()
            .catch((error: unknown) =>
              logger.warn({ msg: "metrics refresh failed", err: describeError(error) }),
            )
            .finally(() => {
              refreshing = undefined;
            });
        }
      } catch (error) {
        if (signal.aborted) break;
        logger.error({
          msg: "reconcile step failed; retrying next interval",
          err: describeError(error),
        });
      }
      await sleep(config.QUASAR_RECONCILE_INTERVAL, signal);
    }
    await refreshing;
  }

  return {
    workers,
    stepOnce,
    sweepOnce,
    degradedCids,
    refreshMetrics,
    async start() {
      if (lifecycle) return;
      lifecycle = new AbortController();
      const signal = lifecycle.signal;
      await recoverInFlight();
      loops = workers.map((worker) => worker.run(signal));
      // A crash between the desired store's step and the ledger write loses nothing: this sweep
      // (and every later one) re-derives the ledger's work from the desired set itself.
      await sweepOnce().catch((error: unknown) =>
        logger.error({ msg: "start-up sweep failed", err: describeError(error) }),
      );
      loops.push(loop(signal));
    },
    async stop() {
      if (!lifecycle) return;
      lifecycle.abort(new Error("reconciler stopping"));
      await Promise.allSettled(loops);
      await serial.catch(() => {});
      lifecycle = undefined;
      loops = [];
    },
    async waitIdle(options = {}) {
      const deadline = Date.now() + (options.timeoutMs ?? 60_000);
      while (true) {
        options.signal?.throwIfAborted();
        if (workers.every((w) => w.isIdle() || !w.isUp())) {
          const due = await db
            .selectFrom("pin_ledger")
            .select(sql<number>`count(*)::int`.as("count"))
            .where("status", "in", ["queued", "unpin_queued", "pinning", "unpinning"])
            .where("next_attempt_at", "<=", now())
            .where(
              "backend_id",
              "=",
              sql<string>`any(${workers.filter((w) => w.isUp()).map((w) => w.backend.id)}::text[])`,
            )
            .executeTakeFirst();
          if ((due?.count ?? 0) === 0 && workers.every((w) => w.isIdle() || !w.isUp())) return;
          for (const worker of workers) worker.wake();
        }
        if (Date.now() > deadline) throw new Error("reconciler did not become idle in time");
        await sleep(50);
      }
    },
  };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
