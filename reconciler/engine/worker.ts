import type { Kysely } from "kysely";
import { CID } from "multiformats/cid";
import type { Logger } from "pino";
import type { Backend } from "@/backends/backend.js";
import { type PinListing, QUASAR_PIN_NAME } from "@/backends/pin-backend.js";
import { describeError } from "@/core/errors.js";
import { applyChanges, type LedgerChange, type LedgerTables } from "@/db/ledger/ledger.js";
import { type ClaimedRow, claimWork, relaxCommit } from "@/db/ledger/queue.js";
import { type BackoffPolicy, backoffDelayMs } from "./backoff.js";
import {
  decideAdoption,
  decideDisown,
  decideLatePinOwnership,
  decidePinned,
  decideUnpinned,
  looksForForeignPin,
} from "./decide-outcome.js";
import type { BackendHealth } from "./decide-replicas.js";
import {
  decidePinFailure,
  decideRecover,
  decideUnpinFailure,
  downProbePolicy,
} from "./decide-retry.js";
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
   * declared exclusive (PinBackend.exclusive).
   */
  foreignPinCheck: boolean;
};

export type BackendWorker = {
  readonly backend: Backend;
  /** Runs until `signal` aborts, then finishes or abandons in-flight commands and flushes. */
  run(signal: AbortSignal): Promise<void>;
  /** New work was queued: claim now rather than at the next poll. */
  wake(): void;
  /**
   * One attempt to open the backend (idempotent) and see it answer; false leaves it down, and
   * `run` keeps retrying with backoff. The other workers never wait for this one.
   */
  open(): Promise<boolean>;
  /** Nothing claimed, in flight or waiting to be written, and the last claim found nothing due. */
  isIdle(): boolean;
  isUp(): boolean;
  /** Up or down, the last error that put it down, and since when. */
  health(): BackendHealth;
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
  /** Called whenever the backend goes down or comes back. */
  onHealthChange?: () => void;
  now?: () => Date;
};

/**
 * A look made ahead of its pin is used only while this fresh: a foreign pin made after the look
 * is Kubo's race either way (see api/upload.ts), and this keeps its window close to one pin's.
 */
const LOOK_AHEAD_MAX_AGE_MS = 1_000;
/** The outcome of a look for a foreign pin, settled (never a rejected promise left unread). */
type LookOutcome = { found: PinListing | undefined; at: number } | { error: unknown };

const FLUSH_BATCH = 256;
const FLUSH_DELAY_MS = 15;
/** One open attempt gives up after this; the backend's own open may still finish later. */
const OPEN_TIMEOUT_MS = 15_000;

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
  // Looks for foreign pins started before their rows' pins (lookAhead), by CID.
  const looks = new Map<string, Promise<LookOutcome>>();
  let buffer: ClaimedRow[] = [];
  let completions: LedgerChange[] = [];
  let drained = false;
  // Assumed up until an open or a probe fails (a caller may have opened the backend already).
  let up = true;
  let lastError: string | null = null;
  let since = now();
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

  /**
   * Starts the looks of the next rows to pin while earlier pins run. A look waits behind Kubo's
   * pinner lock as long as a pin does; made inside the pin's slot it kept that slot from
   * pinning for the wait (bench/pin.ts). At most `concurrency` looks are held at once.
   */
  const lookAhead = () => {
    if (!policy.foreignPinCheck || stopping || !up) return;
    for (let i = 0; i < buffer.length && looks.size < policy.concurrency; i++) {
      const row = buffer[i] as ClaimedRow;
      if (row.status === "unpinning" || looks.has(row.cid) || !looksForForeignPin(row, true))
        continue;
      looks.set(row.cid, look(CID.parse(row.cid)));
    }
  };
  const look = (cid: CID): Promise<LookOutcome> =>
    backend.pins.getPin(cid, { signal: commands.signal }).then(
      (found) => ({ found, at: Date.now() }),
      (error: unknown) => ({ error }),
    );
  /** Drops the looks of rows that left the buffer without a command (backend down, stop). */
  const dropBuffer = () => {
    buffer = [];
    looks.clear();
  };

  const launch = () => {
    while (!stopping && up && inflight.size < policy.concurrency && buffer.length > 0) {
      const row = buffer.shift() as ClaimedRow;
      const ahead = looks.get(row.cid);
      looks.delete(row.cid);
      const command = (row.status === "unpinning" ? unpinRow(row) : pinRow(row, ahead))
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
    lookAhead();
  };

  /** The row's foreign-pin look: the one made ahead if it is still fresh, else a new one. */
  async function foundFor(
    cid: CID,
    ahead: Promise<LookOutcome> | undefined,
  ): Promise<PinListing | undefined> {
    const outcome = await (ahead ?? look(cid));
    if ("error" in outcome) throw outcome.error;
    if (ahead && Date.now() - outcome.at > LOOK_AHEAD_MAX_AGE_MS) return foundFor(cid, undefined);
    return outcome.found;
  }

  async function pinRow(row: ClaimedRow, ahead?: Promise<LookOutcome>): Promise<LedgerChange> {
    const cid = CID.parse(row.cid);
    const signal = commands.signal;
    const ids = { backendId: backend.id, cid: row.cid };
    try {
      if (looksForForeignPin(row, policy.foreignPinCheck)) {
        const found = await foundFor(cid, ahead);
        const adopted = decideAdoption({ ...ids, found });
        if (adopted) {
          if (found?.direct) {
            // Someone else holds the root block only; the whole DAG must stay (see decideAdoption).
            await withInactivityTimeout(
              ({ signal: pinSignal, progress }) =>
                backend.pins.pin(cid, {
                  name: QUASAR_PIN_NAME,
                  signal: pinSignal,
                  onProgress: progress,
                }),
              { timeoutMs: policy.inactivityTimeoutMs, signal },
            );
          }
          metrics.operations.inc({ ...label, op: "adopt", outcome: "ok" });
          logger.info({ msg: "foreign pin adopted: never unpinned", cid: row.cid });
          return adopted;
        }
      }
      let copies: number | undefined;
      await withInactivityTimeout(
        ({ signal: pinSignal, progress }) =>
          backend.pins.pin(cid, {
            name: QUASAR_PIN_NAME,
            signal: pinSignal,
            onProgress: progress,
            onCopies: (held) => {
              copies = held;
            },
          }),
        { timeoutMs: policy.inactivityTimeoutMs, signal },
      );
      metrics.operations.inc({ ...label, op: "pin", outcome: "ok" });
      return decidePinned({ ...ids, copies });
    } catch (error) {
      if (signal.aborted) return recoverChange(row, error);
      metrics.operations.inc({ ...label, op: "pin", outcome: "error" });
      metrics.errors.inc({ ...label, op: "pin" });
      if (!(await probe(error))) return recoverChange(row, error);
      const source = await copyFromPeer(cid, signal);
      if (source) return decidePinned({ ...ids, copiedFrom: source });
      const change = decidePinFailure({ backendId: backend.id, row, error, at: now(), policy });
      const log = { cid: row.cid, err: change.set?.last_error, attempts: change.set?.attempts };
      if (change.event === "pin_give_up")
        logger.warn({ msg: "pin failed: retried slowly", ...log });
      else logger.info({ msg: "pin failed: will retry", ...log });
      return change;
    }
  }

  async function unpinRow(row: ClaimedRow): Promise<LedgerChange> {
    const cid = CID.parse(row.cid);
    const signal = commands.signal;
    const ids = { backendId: backend.id, cid: row.cid };
    try {
      // Pin names tell whether someone pinned it again only where the backend stores them.
      if (policy.foreignPinCheck && (await backend.pins.storesPinNames({ signal }))) {
        const disowned = decideDisown({
          ...ids,
          found: await backend.pins.getPin(cid, { signal }),
        });
        if (disowned) {
          metrics.operations.inc({ ...label, op: "disown", outcome: "ok" });
          logger.info({ msg: "pinned again by someone else: left in place", cid: row.cid });
          return disowned;
        }
      }
      await backend.pins.unpin(cid, { signal });
      metrics.operations.inc({ ...label, op: "unpin", outcome: "ok" });
      return decideUnpinned(ids);
    } catch (error) {
      if (signal.aborted) return recoverChange(row, error);
      metrics.operations.inc({ ...label, op: "unpin", outcome: "error" });
      metrics.errors.inc({ ...label, op: "unpin" });
      if (!(await probe(error))) return recoverChange(row, error);
      // Unpins are never given up: retried with backoff until done.
      return decideUnpinFailure({
        backendId: backend.id,
        row,
        error,
        at: now(),
        retry: policy.retry,
      });
    }
  }

  function recoverChange(row: ClaimedRow, error: unknown): LedgerChange {
    return decideRecover({ backendId: backend.id, row, error, stopping, up });
  }

  /**
   * Copies `cid` from a peer that holds it pinned (the whole DAG) as a CAR. Both ends need the
   * content role: a pin-only backend can neither export nor import one.
   */
  async function copyFromPeer(cid: CID, signal: AbortSignal): Promise<string | undefined> {
    // A pin-only backend that takes CARs (IPFS Cluster's /add?format=car) can receive one too.
    const target = backend.content ?? backend.pins;
    if (!target.importCar) return undefined;
    const importCar = target.importCar.bind(target);
    for (const peer of params.peers()) {
      if (peer.id === backend.id || !peer.content) continue;
      const source = peer.content;
      try {
        // A direct pin holds the root block only: not a whole DAG to copy.
        const listing = await peer.pins.getPin(cid, { signal });
        const held = listing !== undefined && !listing.direct;
        if (!held) continue;
        await withInactivityTimeout(
          async ({ signal: copySignal, progress }) => {
            const car = source.exportCar(cid, { signal: copySignal });
            async function* counted() {
              for await (const chunk of car) {
                progress();
                yield chunk;
              }
            }
            await importCar(counted(), { name: QUASAR_PIN_NAME, signal: copySignal });
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

  /** Marks the backend up or down; logs, the gauge and listeners hear only of changes. */
  function setUp(next: boolean, error?: string): void {
    metrics.backendUp.set(label, next ? 1 : 0);
    if (!next) lastError = error ?? lastError;
    if (next === up) return;
    up = next;
    since = now();
    if (next) logger.info({ msg: "backend answers again: resuming its queue" });
    else logger.warn({ msg: "backend unavailable: pausing its queue", err: lastError });
    params.onHealthChange?.();
  }

  /** After a failed command: does the backend still answer? */
  async function probe(error: unknown): Promise<boolean> {
    const alive = await backend.ping(commands.signal).catch(() => false);
    if (!alive) setUp(false, describeError(error));
    return alive;
  }

  /** Opens the backend (idempotent: cheap when already open) and probes it. */
  async function open(signal?: AbortSignal): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        backend.open(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`open did not finish within ${OPEN_TIMEOUT_MS} ms`)),
            OPEN_TIMEOUT_MS,
          );
        }),
      ]);
      if (!(await backend.ping(signal))) {
        setUp(false, "opened, but does not answer its liveness probe");
        return false;
      }
      setUp(true);
      return true;
    } catch (error) {
      setUp(false, describeError(error));
      return false;
    } finally {
      clearTimeout(timer);
    }
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
      const notes = decideLatePinOwnership(batch, results);
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
    metrics.backendUp.set(label, up ? 1 : 0);
    while (!signal.aborted) {
      try {
        if (!up) {
          downSince++;
          // Abandoned claims go back to their queue while the backend is away.
          for (const row of buffer) complete(recoverChange(row, new Error("backend unavailable")));
          dropBuffer();
          await flush();
          await nap(backoffDelayMs(downSince, downProbePolicy(policy.retry)), signal);
          if (signal.aborted) break;
          // Opening again (not just a probe): a backend that never opened needs it, and for
          // one that did it is idempotent.
          if (await open(signal)) {
            downSince = 0;
            drained = false;
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
    dropBuffer();
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
    open: () => open(commands.signal),
    isIdle: () => drained && inflight.size === 0 && buffer.length === 0 && completions.length === 0,
    isUp: () => up,
    health: () => ({ backendId: backend.id, label: backend.label, up, lastError, since }),
  };
}
