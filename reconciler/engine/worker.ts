import type { Kysely } from "kysely";
import { CID } from "multiformats/cid";
import type { Logger } from "pino";
import { type Backend, QUASAR_PIN_NAME } from "@/backends/backend.js";
import { describeError, NonRetryableError } from "@/core/errors.js";
import { applyChanges, type LedgerChange, type LedgerTables } from "@/db/ledger/ledger.js";
import { type ClaimedRow, claimWork, relaxCommit } from "@/db/ledger/queue.js";
import { type BackoffPolicy, backoffDelayMs } from "./backoff.js";
import { withInactivityTimeout } from "./inactivity.js";
import type { ReconcilerMetrics } from "./metrics.js";

/**
 * One backend's worker: claims due rows from its own queues, runs at most `concurrency`
 * commands at once, and writes their outcomes back in batches (one transaction per batch of
 * completions, not per pin, so Postgres is not the bottleneck). A backend that stops
 * answering pauses only this worker, which probes it with backoff until it returns.
 */
export type WorkerPolicy = {
  concurrency: number;
  inactivityTimeoutMs: number;
  pinDeadlineMs: number;
  retry: BackoffPolicy;
  failedRetryIntervalMs: number;
  /** How often an idle worker looks for retries that became due. */
  pollMs: number;
  /** On stop: how long in-flight commands may run before they are abandoned. */
  stopGraceMs: number;
  /**
   * Look for a pin Quasar did not create before pinning (one `getPin` per new pin) and adopt
   * it, never to be unpinned; and before unpinning, for a pin someone else made again since
   * (its name is not Quasar's), which is left in place. Off for a backend the operator
   * declared exclusive (Backend.exclusive).
   */
  foreignPinCheck: boolean;
};

export type BackendWorker = {
  readonly backend: Backend;
  /** Runs until `signal` aborts, then finishes or abandons in-flight commands and flushes. */
  run(signal: AbortSignal): Promise<void>;
  /** New work was queued: claim now rather than at the next poll. */
  wake(): void;
  /** Nothing claimed, in flight or waiting to be written, and the last claim found nothing due. */
  isIdle(): boolean;
  isUp(): boolean;
};

export type CreateWorkerParams = {
  backend: Backend;
  /** Scoped to the reconciler schema. */
  db: Kysely<LedgerTables>;
  logger: Logger;
  metrics: ReconcilerMetrics;
  policy: WorkerPolicy;
  /** The other backends, to copy content from when this one cannot fetch it. */
  peers: () => readonly Backend[];
  now?: () => Date;
};

const FLUSH_BATCH = 256;
const FLUSH_DELAY_MS = 15;

export function createBackendWorker(params: CreateWorkerParams): BackendWorker {
  const { backend, db, metrics, policy } = params;
  const logger = params.logger.child({ backend: backend.label });
  const now = params.now ?? (() => new Date());
  const label = { backend: backend.label };

  // Claimed rows wait in memory so a finishing command starts the next one at once, without
  // a database round trip; the loop tops the buffer up while commands run.
  const bufferTarget = Math.max(policy.concurrency * 16, 64);
  const bufferLow = Math.max(policy.concurrency * 4, 16);

  const inflight = new Map<string, Promise<void>>();
  let buffer: ClaimedRow[] = [];
  let completions: LedgerChange[] = [];
  let drained = false;
  let up = true;
  let stopping = false;
  // Aborted when in-flight commands are abandoned at shutdown (after the grace period).
  const commands = new AbortController();
  let wakeResolve: (() => void) | undefined;

  const wake = () => {
    drained = false;
    wakeResolve?.();
  };
  const nap = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        wakeResolve = undefined;
        resolve();
      }
      wakeResolve = done;
      signal.addEventListener("abort", done, { once: true });
    });

  const complete = (change: LedgerChange) => {
    completions.push(change);
    if (completions.length >= FLUSH_BATCH) wakeResolve?.();
  };

  const launch = () => {
    while (!stopping && up && inflight.size < policy.concurrency && buffer.length > 0) {
      const row = buffer.shift() as ClaimedRow;
      const command = (row.status === "unpinning" ? unpinRow(row) : pinRow(row))
        .then(complete, (error: unknown) => {
          // The command functions turn every failure into an outcome; this is a last guard.
          logger.error({ msg: "command crashed", cid: row.cid, err: describeError(error) });
          complete(recoverChange(row, error));
        })
        .finally(() => {
          inflight.delete(row.cid);
          launch();
          if (inflight.size === 0 || (buffer.length < bufferLow && !drained)) wakeResolve?.();
        });
      inflight.set(row.cid, command);
    }
  };

  async function pinRow(row: ClaimedRow): Promise<LedgerChange> {
    const cid = CID.parse(row.cid);
    const signal = commands.signal;
    const base = { backendId: backend.id, cid: row.cid, expect: "pinning" as const };
    try {
      if (!row.owned && policy.foreignPinCheck) {
        const existing = await backend.getPin(cid, { signal });
        if (existing && (existing.direct || existing.name !== QUASAR_PIN_NAME)) {
          if (existing.direct) {
            // Someone else holds the root block only; the whole DAG must stay. Kubo makes the
            // recursive pin take the direct one's place, so it is adopted: never unpinned,
            // since that would take the other user's pin with it.
            await withInactivityTimeout(
              ({ signal: pinSignal, progress }) =>
                backend.pin(cid, {
                  name: QUASAR_PIN_NAME,
                  signal: pinSignal,
                  onProgress: progress,
                }),
              { timeoutMs: policy.inactivityTimeoutMs, signal },
            );
          }
          metrics.operations.inc({ ...label, op: "adopt", outcome: "ok" });
          logger.info({ msg: "foreign pin adopted: never unpinned", cid: row.cid });
          return {
            ...base,
            event: "adopt",
            set: { owned: false, attempts: 0, last_error: null },
            log: {
              decision: "adopt",
              reason: existing.direct
                ? "pinned directly by someone else: pinned recursively, never unpinned"
                : "already pinned on the backend, not by Quasar",
              outcome: "ok",
            },
          };
        }
      }
      await withInactivityTimeout(
        ({ signal: pinSignal, progress }) =>
          backend.pin(cid, { name: QUASAR_PIN_NAME, signal: pinSignal, onProgress: progress }),
        { timeoutMs: policy.inactivityTimeoutMs, signal },
      );
      metrics.operations.inc({ ...label, op: "pin", outcome: "ok" });
      return pinned(row, "pin", "desired");
    } catch (error) {
      if (signal.aborted) return recoverChange(row, error);
      metrics.operations.inc({ ...label, op: "pin", outcome: "error" });
      metrics.errors.inc({ ...label, op: "pin" });
      if (!(await probe())) return recoverChange(row, error);
      const source = await copyFromPeer(cid, signal);
      if (source) return pinned(row, "copy", `fetched as a CAR from ${source}`);
      const attempts = row.attempts + 1;
      const at = now();
      const lastError = describeError(error);
      const pastDeadline = row.deadline_at !== null && at.getTime() >= row.deadline_at.getTime();
      if (error instanceof NonRetryableError || pastDeadline || row.status === "failed") {
        logger.warn({ msg: "pin failed: retried slowly", cid: row.cid, err: lastError, attempts });
        return {
          ...base,
          event: "pin_give_up",
          set: {
            attempts,
            last_error: lastError,
            next_attempt_at: new Date(at.getTime() + policy.failedRetryIntervalMs),
          },
          log: {
            decision: "mark_failed",
            reason: pastDeadline ? "deadline passed" : "the backend refused the pin",
            outcome: "error",
            error: lastError,
          },
        };
      }
      logger.info({ msg: "pin failed: will retry", cid: row.cid, err: lastError, attempts });
      return {
        ...base,
        event: "pin_error",
        set: {
          attempts,
          last_error: lastError,
          next_attempt_at: new Date(at.getTime() + backoffDelayMs(attempts, policy.retry)),
        },
        log: { decision: "pin", reason: `attempt ${attempts}`, outcome: "error", error: lastError },
      };
    }
  }

  function pinned(row: ClaimedRow, decision: "pin" | "copy", reason: string): LedgerChange {
    return {
      backendId: backend.id,
      cid: row.cid,
      expect: "pinning",
      event: "pin_ok",
      set: { owned: true, attempts: 0, last_error: null },
      log: { decision, reason, outcome: "ok" },
    };
  }

  async function unpinRow(row: ClaimedRow): Promise<LedgerChange> {
    const cid = CID.parse(row.cid);
    const signal = commands.signal;
    try {
      // A daemon keeps one pin per CID: whoever pins it again after Quasar did shares that
      // pin, and unpinning would take it from them. Their pin carries their name (or none).
      if (policy.foreignPinCheck && (await backend.storesPinNames({ signal }))) {
        const existing = await backend.getPin(cid, { signal });
        if (existing !== undefined && existing.name !== QUASAR_PIN_NAME) {
          metrics.operations.inc({ ...label, op: "disown", outcome: "ok" });
          logger.info({ msg: "pinned again by someone else: left in place", cid: row.cid });
          return {
            backendId: backend.id,
            cid: row.cid,
            expect: "unpinning",
            event: "disown",
            set: { owned: false, attempts: 0, last_error: null },
            log: {
              decision: "skip_foreign",
              reason: `pinned again since Quasar pinned it (name ${JSON.stringify(existing.name ?? "")}): left in place`,
              outcome: "ok",
            },
          };
        }
      }
      await backend.unpin(cid, { signal });
      metrics.operations.inc({ ...label, op: "unpin", outcome: "ok" });
      return {
        backendId: backend.id,
        cid: row.cid,
        expect: "unpinning",
        event: "unpin_ok",
        log: { decision: "unpin", reason: "no longer desired", outcome: "ok" },
      };
    } catch (error) {
      if (signal.aborted) return recoverChange(row, error);
      metrics.operations.inc({ ...label, op: "unpin", outcome: "error" });
      metrics.errors.inc({ ...label, op: "unpin" });
      if (!(await probe())) return recoverChange(row, error);
      // Unpins are never given up: retried with backoff until done.
      const attempts = row.attempts + 1;
      const lastError = describeError(error);
      return {
        backendId: backend.id,
        cid: row.cid,
        expect: "unpinning",
        event: "unpin_error",
        set: {
          attempts,
          last_error: lastError,
          next_attempt_at: new Date(now().getTime() + backoffDelayMs(attempts, policy.retry)),
        },
        log: {
          decision: "unpin",
          reason: `attempt ${attempts}`,
          outcome: "error",
          error: lastError,
        },
      };
    }
  }

  /** Back to its queue without counting an attempt: the command was abandoned, not refused. */
  function recoverChange(row: ClaimedRow, error: unknown): LedgerChange {
    return {
      backendId: backend.id,
      cid: row.cid,
      expect: row.status,
      event: "recover",
      set: { last_error: describeError(error) },
      log: {
        decision: "recover",
        reason: stopping
          ? "abandoned at shutdown"
          : up
            ? "command interrupted"
            : "backend unavailable",
        outcome: "error",
        error: describeError(error),
      },
    };
  }

  /** Copies `cid` from a peer that holds it pinned (the whole DAG) as a CAR. */
  async function copyFromPeer(cid: CID, signal: AbortSignal): Promise<string | undefined> {
    for (const peer of params.peers()) {
      if (peer.id === backend.id) continue;
      try {
        // A direct pin holds the root block only: not a whole DAG to copy.
        const listing = await peer.getPin(cid, { signal });
        const held = listing !== undefined && !listing.direct;
        if (!held) continue;
        await withInactivityTimeout(
          async ({ signal: copySignal, progress }) => {
            const car = peer.exportCar(cid, { signal: copySignal });
            async function* counted() {
              for await (const chunk of car) {
                progress();
                yield chunk;
              }
            }
            await backend.importCar(counted(), { name: QUASAR_PIN_NAME, signal: copySignal });
          },
          { timeoutMs: policy.inactivityTimeoutMs, signal },
        );
        metrics.operations.inc({ ...label, op: "copy", outcome: "ok" });
        logger.info({ msg: "copied from another backend", cid: cid.toString(), from: peer.label });
        return peer.label;
      } catch (error) {
        if (signal.aborted) throw error;
        metrics.operations.inc({ ...label, op: "copy", outcome: "error" });
        logger.warn({
          msg: "copy failed",
          cid: cid.toString(),
          from: peer.label,
          err: describeError(error),
        });
      }
    }
    return undefined;
  }

  async function probe(): Promise<boolean> {
    const alive = await backend.ping(commands.signal).catch(() => false);
    if (!alive && up) {
      up = false;
      metrics.backendUp.set(label, 0);
      logger.warn({ msg: "backend unavailable: pausing its queue" });
    }
    return alive;
  }

  async function flush(): Promise<void> {
    if (completions.length === 0) return;
    const batch = completions;
    completions = [];
    try {
      const results = await db.transaction().execute(async (trx) => {
        await relaxCommit(trx);
        return applyChanges(trx, batch, { now: now(), pinDeadlineMs: policy.pinDeadlineMs });
      });
      // A pin that landed after its CID was unwanted mid-flight is still Quasar's: record the
      // ownership so the queued unpin is allowed to remove it.
      const notes: LedgerChange[] = [];
      results.forEach((result, i) => {
        const change = batch[i] as LedgerChange;
        if (
          !result.applied &&
          result.why === "stale" &&
          change.event === "pin_ok" &&
          result.from === "unpin_queued"
        ) {
          notes.push({
            backendId: change.backendId,
            cid: change.cid,
            event: "unwant",
            expect: "unpin_queued",
            set: { owned: true },
          });
        }
      });
      if (notes.length > 0) {
        await db
          .transaction()
          .execute((trx) =>
            applyChanges(trx, notes, { now: now(), pinDeadlineMs: policy.pinDeadlineMs }),
          );
      }
    } catch (error) {
      // Postgres unavailable: keep the outcomes and write them on the next round.
      completions = batch.concat(completions);
      logger.error({ msg: "could not record outcomes; will retry", err: describeError(error) });
      throw error;
    }
  }

  async function refill(): Promise<void> {
    if (drained || buffer.length >= bufferLow) return;

    const exclude = [...inflight.keys(), ...buffer.map((r) => r.cid)];
    const limit = bufferTarget - buffer.length;
    const rows = await claimWork(db, {
      backendId: backend.id,
      limit,
      now: now(),
      exclude,
      pinDeadlineMs: policy.pinDeadlineMs,
    });
    if (rows.length < limit) drained = true;
    buffer = buffer.concat(rows);
    launch();
  }

  async function run(signal: AbortSignal): Promise<void> {
    let downSince = 0;
    let lastPoll = Date.now();
    metrics.backendUp.set(label, 1);
    while (!signal.aborted) {
      try {
        if (!up) {
          downSince++;
          // Abandoned claims go back to their queue while the backend is away.
          for (const row of buffer) complete(recoverChange(row, new Error("backend unavailable")));
          buffer = [];
          await flush();
          await nap(
            backoffDelayMs(downSince, {
              baseMs: Math.min(policy.retry.baseMs, 1_000),
              maxMs: Math.min(policy.retry.maxMs, 30_000),
            }),
            signal,
          );
          if (signal.aborted) break;
          if (await backend.ping(signal).catch(() => false)) {
            up = true;
            downSince = 0;
            drained = false;
            metrics.backendUp.set(label, 1);
            logger.info({ msg: "backend answers again: resuming its queue" });
          }
          continue;
        }
        if (Date.now() - lastPoll >= policy.pollMs) {
          drained = false;
          lastPoll = Date.now();
        }
        // Claiming and writing outcomes run side by side; commands keep running meanwhile.
        await Promise.all([refill(), completions.length > 0 ? flush() : undefined]);
        launch();
        if (inflight.size > 0) {
          // Woken early when a batch of outcomes is full, the buffer runs low or all finished.
          await nap(FLUSH_DELAY_MS, signal);
        } else if (completions.length === 0 && buffer.length === 0) {
          await nap(drained ? Math.max(1, policy.pollMs - (Date.now() - lastPoll)) : 0, signal);
        }
      } catch (error) {
        logger.error({ msg: "worker round failed; retrying", err: describeError(error) });
        await nap(1_000, signal);
      }
    }
    await shutdown();
  }

  async function shutdown(): Promise<void> {
    stopping = true;
    // Claimed but never sent: straight back to the queue.
    for (const row of buffer) complete(recoverChange(row, new Error("shutdown")));
    buffer = [];
    if (inflight.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const grace = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, policy.stopGraceMs);
      });
      await Promise.race([Promise.allSettled([...inflight.values()]), grace]);
      clearTimeout(timer);
      commands.abort(new Error("reconciler shutting down"));
      await Promise.allSettled([...inflight.values()]);
    }
    for (let i = 0; i < 3 && completions.length > 0; i++) {
      await flush().catch(() => new Promise((resolve) => setTimeout(resolve, 200)));
    }
  }

  return {
    backend,
    run,
    wake,
    isIdle: () => drained && inflight.size === 0 && buffer.length === 0 && completions.length === 0,
    isUp: () => up,
  };
}
