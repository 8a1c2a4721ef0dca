import { setTimeout as delay } from "node:timers/promises";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { Backend } from "@/backends/backend.js";
import { listingKey } from "@/backends/pin-backend.js";
import type { QuasarConfig } from "@/core/config/schema.js";
import { describeError } from "@/core/errors.js";
import { recordBackendHealth } from "@/db/backend-health.js";
import type { Database } from "@/db/database.js";
import type { DesiredChange, DesiredStore } from "@/db/desired/index.js";
import {
  dueCount,
  inFlightRows,
  ownershipRowsOf,
  recordCopies,
  releasesOfDesired,
  rowsByCid,
  statusCounts,
  underReplicated,
  underReplicatedCount,
} from "@/db/ledger/engine-reads.js";
import { applyChanges, type LedgerChange, type LedgerRow, ledgerDb } from "@/db/ledger/ledger.js";
import { queueDepths } from "@/db/ledger/queue.js";
import { IndexerNotReadyError } from "@/db/read-model/index.js";
import { diffPins } from "../diff.js";
import {
  decideCancelRelease,
  decideDesiredChange,
  decideRecoverInFlight,
  decideRelease,
  decideSweepExtra,
  decideSweepMissing,
  decideSweepRecovery,
  mayHoldQuasarPin,
  unwantedCids,
} from "./decide-queue.js";
import {
  type BackendHealth,
  decideReadiness,
  requiredReplicas as decideRequiredReplicas,
  type Readiness,
} from "./decide-replicas.js";
import { decideNextStepDelay, MINIMUM_WAIT_MS } from "./decide-wait.js";
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
  /**
   * Opened by start(), each on its own (open is idempotent, so opened ones are fine too): one
   * that cannot be opened is down and retried with backoff while the others converge.
   */
  backends: readonly Backend[];
  desiredStore: DesiredStore;
  config: EngineConfig;
  /** On stop: how long in-flight commands may finish before being abandoned (default 10 s). */
  stopGraceMs?: number;
  /** A sweep still listing after this long logs its progress, and again every such period (default 10 s). */
  sweepProgressMs?: number;
  /** Changes one step hands to the ledger at most (default MAX_STEP_CHANGES); lower in tests. */
  maxStepChanges?: number;
  now?: () => Date;
};

export type StepReport = {
  changes: number;
  ledgerChanges: number;
  ms: number;
  /** More changes than MAX_STEP_CHANGES: the rest is left to a sweep (the loop runs one next). */
  truncated: boolean;
};
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
/** What the reconciler's /health and /ready answer, and what it records for `quasar status`. */
export type ReconcilerHealth = Readiness & { backends: BackendHealth[] };

export type Reconciler = {
  /** Re-drives commands left in flight by a crash, sweeps once, then runs the loops until stop(). */
  start(): Promise<void>;
  /** Stops the loops; in-flight commands finish or are abandoned within the grace period. */
  stop(): Promise<void>;
  /**
   * Work was queued for the desired step (db/desired/wakeups.ts): the loop's pause ends now,
   * though never sooner than MINIMUM_WAIT_MS after it began, so a burst of uploads is taken
   * in few steps. A wake-up during a step shortens the pause after it to that minimum.
   */
  wake(): void;
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
  /**
   * Every backend up or down, and readiness: ready once started while at least
   * QUASAR_MIN_REPLICAS backends (every one when 0) are up.
   */
  health(): ReconcilerHealth;
  readonly workers: readonly BackendWorker[];
};

const APPLY_CHUNK = 500;
const METRICS_REFRESH_MS = 10_000;
/** How often backend health is recorded even when nothing changed, so a stale report shows. */
const HEALTH_REPORT_MS = 10_000;
/**
 * Changes one step hands to the ledger at most (each becomes a ledger change per backend):
 * bounds the step's memory; past it, a sweep derives the ledger's work instead.
 */
const MAX_STEP_CHANGES = 20_000;
/** How soon a backend a sweep had to skip is swept again (on its own). */
const SKIPPED_SWEEP_RETRY_MS = 30_000;

export function createReconciler(params: CreateReconcilerParams): Reconciler {
  const { common, config, desiredStore, backends } = params;
  const { logger, metrics } = common;
  const db = ledgerDb(params.db, config.QUASAR_RECONCILER_SCHEMA);
  const now = params.now ?? (() => new Date());
  const pinDeadlineMs = config.QUASAR_PIN_DEADLINE;
  const sweepProgressMs = params.sweepProgressMs ?? 10_000;
  const maxStepChanges = params.maxStepChanges ?? MAX_STEP_CHANGES;
  const backendIds = backends.map((b) => b.id);
  const requiredReplicas = decideRequiredReplicas(
    config.QUASAR_MIN_REPLICAS,
    backends.length,
    backends.some((b) => b.pins.countsCopies === true),
  );
  const policy: Omit<WorkerPolicy, "foreignPinCheck"> = {
    concurrency: config.QUASAR_PIN_CONCURRENCY,
    inactivityTimeoutMs: config.QUASAR_PIN_INACTIVITY_TIMEOUT,
    pinDeadlineMs,
    retry: { baseMs: config.QUASAR_RETRY_BASE, maxMs: config.QUASAR_RETRY_MAX },
    failedRetryIntervalMs: config.QUASAR_FAILED_RETRY_INTERVAL,
    pollMs: Math.min(config.QUASAR_RECONCILE_INTERVAL, 1_000),
    stopGraceMs: params.stopGraceMs ?? 10_000,
  };
  const workers: BackendWorker[] = backends.map((backend) =>
    createBackendWorker({
      backend,
      db,
      logger,
      metrics,
      policy: {
        ...policy,
        // A backend whose pins mostly wait (a cluster's trackers) may run more at once.
        concurrency: Math.max(policy.concurrency, backend.pins.pinConcurrency ?? 0),
        foreignPinCheck: !backend.pins.exclusive,
      },
      // A peer that is down cannot serve a copy (and one never opened must not be started here).
      peers: () => workers.filter((w) => w.isUp()).map((w) => w.backend),
      onHealthChange: () => void reportHealth(),
      now,
    }),
  );
  let started = false;

  function health(): ReconcilerHealth {
    const states = workers.map((w) => w.health());
    const readiness = decideReadiness(
      states.map((state, i) => ({
        ...state,
        severalCopies: (backends[i] as Backend).pins.countsCopies === true,
      })),
      requiredReplicas,
    );
    const answer = started
      ? readiness
      : { ...readiness, ready: false, reason: "starting: backends not opened yet" };
    metrics.ready.set(answer.ready ? 1 : 0);
    return { ...answer, backends: states };
  }

  // One write at a time; a change during a write is written right after it.
  let reporting: Promise<void> | undefined;
  let reportAgain = false;
  function reportHealth(): Promise<void> {
    if (reporting) {
      reportAgain = true;
      return reporting;
    }
    reporting = (async () => {
      do {
        reportAgain = false;
        const { backends: states } = health();
        await recordBackendHealth(params.db, config.QUASAR_RECONCILER_SCHEMA, states).catch(
          (error: unknown) =>
            logger.warn({ msg: "could not record backend health", err: describeError(error) }),
        );
      } while (reportAgain);
    })().finally(() => {
      reporting = undefined;
    });
    return reporting;
  }

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

  const changesFor = (change: DesiredChange) => decideDesiredChange(change, backendIds);

  /** unwant for pins Quasar may hold, release (no command) for the others. */
  async function resolveUnwanted(changes: LedgerChange[]): Promise<LedgerChange[]> {
    const cids = unwantedCids(changes);
    if (cids.length === 0) return changes;
    const mayHold = new Set<string>();
    for (const row of await ownershipRowsOf(db, cids))
      if (mayHoldQuasarPin(row)) mayHold.add(`${row.backend_id} ${row.cid}`);
    return decideRelease(changes, (backendId, cid) => mayHold.has(`${backendId} ${cid}`));
  }

  async function stepOnce(): Promise<StepReport> {
    return exclusive(async () => {
      const started = performance.now();
      const { changes, truncated } = await desiredStore.boundedStep({
        now: now(),
        signal: lifecycle?.signal,
        maxChanges: maxStepChanges,
      });
      const ledgerChanges = await resolveUnwanted(changes.flatMap(changesFor));
      const applied = await apply(ledgerChanges);
      const ms = performance.now() - started;
      metrics.stepSeconds.observe(ms / 1_000);
      if (changes.length > 0)
        logger.debug({ msg: "step", changes: changes.length, applied, ms, truncated });
      return { changes: changes.length, ledgerChanges: applied, ms, truncated };
    });
  }

  async function sweepBackend(
    backend: Backend,
    startedAt: Date,
  ): Promise<SweepReport["backends"][number]> {
    const timer = metrics.sweepSeconds.startTimer({ backend: backend.label });
    const signal = lifecycle?.signal;
    let listed = 0;
    // A backend keeping several copies reports how many: written to its pinned rows a page at
    // a time while the listing streams (only changed counts are written).
    let copies: { cid: string; copies: number }[] = [];
    let copiesWrite: Promise<unknown> = Promise.resolve();
    const flushCopies = () => {
      const page = copies;
      copies = [];
      copiesWrite = copiesWrite.then(() =>
        recordCopies(db, config.QUASAR_RECONCILER_SCHEMA, backend.id, page),
      );
    };
    const needsRecovery: string[] = [];
    const sweepStarted = Date.now();
    let lastReport = sweepStarted;
    async function* listing() {
      for await (const pin of backend.pins.listPins({ signal })) {
        listed++;
        // A large backend's sweep (the first one above all) takes a while: say it moves.
        if (Date.now() - lastReport >= sweepProgressMs) {
          lastReport = Date.now();
          logger.info({
            msg: "sweep in progress",
            backend: backend.label,
            listed,
            seconds: Math.round((lastReport - sweepStarted) / 1_000),
          });
        }
        const cid = listingKey(pin);
        if (pin.copies !== undefined) {
          copies.push({ cid, copies: pin.copies });
          if (copies.length >= 5_000) flushCopies();
        }
        if (pin.needsRecovery) needsRecovery.push(cid);
        yield cid;
      }
      flushCopies();
    }
    // The desired set is at least as new as startedAt (the step before the sweep); an unpin
    // candidate is acted on only when its ledger row predates startedAt (below). Pages cost one
    // await per 20,000 CIDs instead of one per CID.
    const { toPin, toUnpin } = await diffPins(
      desiredStore.streamDesiredText({ signal }),
      listing(),
      { signal },
    );
    await copiesWrite;
    let requeued = 0;
    let unwanted = 0;
    // Listed, but some copy failed or vanished (Cluster's pin_error, unexpectedly_unpinned):
    // a pinned row goes back to its queue, and the pin repairs it (for Cluster: a recover).
    for (let i = 0; i < needsRecovery.length; i += 5_000) {
      const cids = needsRecovery.slice(i, i + 5_000);
      const rows = await rowsOf(backend.id, cids);
      const changes: LedgerChange[] = [];
      for (const cid of cids) {
        const change = decideSweepRecovery({ backendId: backend.id, cid, row: rows.get(cid) });
        if (change) changes.push(change);
      }
      requeued += await apply(changes);
    }
    for (let i = 0; i < toPin.length; i += 5_000) {
      const cids = toPin.slice(i, i + 5_000);
      const rows = await rowsOf(backend.id, cids);
      const changes = cids.map((cid) =>
        decideSweepMissing({ backendId: backend.id, cid, row: rows.get(cid) }),
      );
      requeued += await apply(changes);
    }
    for (let i = 0; i < toUnpin.length; i += 5_000) {
      const cids = toUnpin.slice(i, i + 5_000);
      const rows = await rowsOf(backend.id, cids);
      const changes: LedgerChange[] = [];
      for (const cid of cids) {
        const change = decideSweepExtra({
          backendId: backend.id,
          cid,
          row: rows.get(cid),
          sweepStartedAt: startedAt,
        });
        if (change) changes.push(change);
      }
      unwanted += await apply(changes);
    }
    timer();
    if (Date.now() - sweepStarted >= sweepProgressMs) {
      logger.info({
        msg: "sweep done",
        backend: backend.label,
        listed,
        seconds: Math.round((Date.now() - sweepStarted) / 1_000),
      });
    }
    if (requeued + unwanted > 0) {
      logger.info({ msg: "sweep repaired drift", backend: backend.label, requeued, unwanted });
    }
    return { backendId: backend.id, listed, requeued, unwanted };
  }

  const rowsOf = (backendId: string, cids: string[]): Promise<Map<string, LedgerRow>> =>
    rowsByCid(db, backendId, cids);

  /** Sweeps every backend, or only those in `only` (backends an earlier sweep had to skip). */
  async function sweepOnce(only?: ReadonlySet<string>): Promise<SweepReport> {
    return exclusive(async () => {
      const started = performance.now();
      const startedAt = now();
      // The step before the sweep makes the desired set at least as new as startedAt. Changes
      // it does not return (truncated) are what the sweep below derives anyway.
      const { changes } = await desiredStore.boundedStep({
        now: startedAt,
        signal: lifecycle?.signal,
        maxChanges: maxStepChanges,
      });
      await apply(await resolveUnwanted(changes.flatMap(changesFor)));
      // Before any backend: a release waiting for a CID the desired set holds again is
      // cancelled (a truncated step's `want` the listings below cannot see: the pin is there).
      const swept = backends.filter((backend) => !only || only.has(backend.id));
      await apply(
        (
          await releasesOfDesired(
            db,
            swept.map((backend) => backend.id),
          )
        ).map((row) => decideCancelRelease({ backendId: row.backend_id, cid: row.cid })),
      );
      const reports: SweepReport["backends"] = [];
      for (const [i, backend] of backends.entries()) {
        if (only && !only.has(backend.id)) continue;
        // A backend that is down is swept again soon (the loop's retry); the others go on.
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
    const rows = await inFlightRows(db, backendIds);
    const changes = rows.map(decideRecoverInFlight);
    await apply(changes);
    if (rows.length > 0)
      logger.info({ msg: "re-driving commands left in flight", count: rows.length });
    return rows.length;
  }

  async function degradedCids(options: { limit?: number } = {}): Promise<DegradedCid[]> {
    const rows = await underReplicated(db, backendIds, requiredReplicas, options.limit ?? 1_000);
    return rows.map((r) => ({ cid: r.cid, replicas: r.replicas, required: requiredReplicas }));
  }

  async function refreshMetrics(): Promise<void> {
    const [depths, statuses, counts, lag, degraded] = await Promise.all([
      queueDepths(db),
      statusCounts(db),
      desiredStore.counts(),
      desiredStore.lag(),
      underReplicatedCount(db, backendIds, requiredReplicas),
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
    metrics.degraded.set(degraded);
    for (const chain of lag) {
      metrics.lagBlocks.set(
        { chain: String(chain.chainId) },
        Number(chain.finalizedBlock - chain.foldedBlock),
      );
    }
  }

  // Backends the last sweep could not list (down, or the listing broke), swept again on
  // their own every SKIPPED_SWEEP_RETRY_MS until one succeeds: work lost before or while
  // they were down waits for no hourly sweep.
  let skipped = new Set<string>();
  let skippedRetryAt = 0;
  const sweepAndNoteSkipped = async (only?: ReadonlySet<string>) => {
    const report = await sweepOnce(only);
    const failed = report.backends.filter((b) => b.error !== undefined).map((b) => b.backendId);
    const swept = new Set(report.backends.map((b) => b.backendId));
    skipped = new Set([...[...skipped].filter((id) => !swept.has(id)), ...failed]);
    skippedRetryAt = Date.now() + SKIPPED_SWEEP_RETRY_MS;
  };

  /** One interval, or less when an expiry falls due sooner (decide-wait.ts). */
  async function nextDelay(): Promise<number> {
    const intervalMs = config.QUASAR_RECONCILE_INTERVAL;
    try {
      const nextChangeAt = await desiredStore.nextChangeAt();
      return decideNextStepDelay({ nowMs: now().getTime(), nextChangeAt, intervalMs });
    } catch {
      return intervalMs;
    }
  }

  // The loop's pause, while it pauses: `wake` ends it early.
  let endPause: (() => void) | undefined;
  let wokenDuringStep = false;
  function pause(ms: number, signal: AbortSignal): Promise<void> {
    const startedAt = Date.now();
    const wanted = wokenDuringStep ? Math.min(ms, MINIMUM_WAIT_MS) : ms;
    wokenDuringStep = false;
    return new Promise((resolve) => {
      let timer = setTimeout(done, wanted);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        endPause = undefined;
        resolve();
      }
      signal.addEventListener("abort", done, { once: true });
      endPause = () => {
        clearTimeout(timer);
        timer = setTimeout(done, Math.max(0, startedAt + MINIMUM_WAIT_MS - Date.now()));
      };
    });
  }

  async function loop(signal: AbortSignal): Promise<void> {
    let lastSweep = Date.now();
    // Set by a failed round: the next one sweeps (see the catch below).
    let repairDue = false;
    let lastMetrics = 0;
    let lastHealth = Date.now();
    let refreshing: Promise<void> | undefined;
    let waitingForIndexer = false;
    while (!signal.aborted) {
      try {
        if (repairDue || Date.now() - lastSweep >= config.QUASAR_FULL_SWEEP_INTERVAL) {
          lastSweep = Date.now();
          repairDue = false;
          await sweepAndNoteSkipped();
        } else if (skipped.size > 0 && Date.now() >= skippedRetryAt) {
          await sweepAndNoteSkipped(skipped);
        } else {
          // A step with more changes than it returns (a first fold, a contract with millions
          // of CIDs changing standing) leaves the rest to a sweep, which streams.
          if ((await stepOnce()).truncated) repairDue = true;
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
        if (Date.now() - lastHealth >= HEALTH_REPORT_MS) {
          lastHealth = Date.now();
          void reportHealth();
        }
        waitingForIndexer = false;
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof IndexerNotReadyError) {
          // A fresh stack: the indexer creates its tables moments after we start. Say so
          // once, not as an error every interval.
          if (!waitingForIndexer)
            logger.info({ msg: "waiting for the indexer's tables", err: describeError(error) });
          waitingForIndexer = true;
        } else {
          // The desired store's step may have committed (or its COMMIT landed with the answer
          // lost) while its ledger work was not written: the store will not hand those changes
          // out again. Only a sweep re-derives the ledger's work from the desired set itself,
          // so the next round is one, rather than the hourly one.
          repairDue = true;
          logger.error({
            msg: "reconcile step failed; retrying next interval with a sweep",
            err: describeError(error),
          });
        }
      }
      await pause(await nextDelay(), signal);
    }
    await refreshing;
  }

  return {
    workers,
    wake() {
      if (endPause) endPause();
      else wokenDuringStep = true;
    },
    stepOnce,
    sweepOnce,
    degradedCids,
    refreshMetrics,
    health,
    async start() {
      if (lifecycle) return;
      lifecycle = new AbortController();
      const signal = lifecycle.signal;
      // Each backend opens on its own: one that fails is down (its worker retries it with
      // backoff) and the others go on.
      const opened = await Promise.all(workers.map((worker) => worker.open()));
      started = true;
      for (const [i, ok] of opened.entries()) {
        if (ok) continue;
        const { label, lastError } = (workers[i] as BackendWorker).health();
        logger.warn({ msg: "backend down at start: retrying it", backend: label, err: lastError });
      }
      await reportHealth();
      await recoverInFlight();
      loops = workers.map((worker) => worker.run(signal));
      // A crash between the desired store's step and the ledger write loses nothing: this sweep
      // (and every later one) re-derives the ledger's work from the desired set itself.
      await sweepAndNoteSkipped().catch((error: unknown) =>
        error instanceof IndexerNotReadyError
          ? logger.info({ msg: "start-up sweep waits for the indexer's tables" })
          : logger.error({ msg: "start-up sweep failed", err: describeError(error) }),
      );
      loops.push(loop(signal));
    },
    async stop() {
      if (!lifecycle) return;
      lifecycle.abort(new Error("reconciler stopping"));
      await Promise.allSettled(loops);
      await serial.catch(() => {});
      await reporting;
      lifecycle = undefined;
      loops = [];
    },
    async waitIdle(options = {}) {
      const deadline = Date.now() + (options.timeoutMs ?? 60_000);
      while (true) {
        options.signal?.throwIfAborted();
        if (workers.every((w) => w.isIdle() || !w.isUp())) {
          const due = await dueCount(
            db,
            workers.filter((w) => w.isUp()).map((w) => w.backend.id),
            now(),
          );
          if (due === 0 && workers.every((w) => w.isIdle() || !w.isUp())) return;
          for (const worker of workers) worker.wake();
        }
        if (Date.now() > deadline) throw new Error("reconciler did not become idle in time");
        await delay(50);
      }
    },
  };
}
