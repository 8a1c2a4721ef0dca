import { type Kysely, type Selectable, sql, type Transaction } from "kysely";
import type { Database } from "../database.js";
import { IllegalTransitionError, LedgerContentionError } from "../errors.js";
import {
  ABSENT,
  isIllegal,
  isPinStatus,
  type PinEvent,
  type PinState,
  type PinStatus,
  transition,
  WANTED_STATUSES,
} from "./pin-status.js";
import type { Decision, Outcome, PinLedgerTable, ReconcileLogTable } from "./tables.js";

export {
  DECISIONS,
  type Decision,
  type LedgerTables,
  OUTCOMES,
  type Outcome,
  type PinLedgerTable,
  type ReconcileLogTable,
} from "./tables.js";

/**
 * The per-backend pin ledger: one row per (backend, cid) with its status, ownership, attempts
 * and last error, plus the append-only reconcile log of every decision. Every status change
 * goes through `applyChanges`, which computes it with `transition` (pin-status.ts), so the
 * ledger can never hold a transition the state machine does not allow.
 */

export type LedgerRow = Selectable<PinLedgerTable>;
export type ReconcileLogRow = Selectable<ReconcileLogTable>;

/** One requested event on one (backend, cid). */
export type LedgerChange = {
  backendId: string;
  cid: string;
  event: PinEvent;
  /** Compare-and-set: apply only when the current state is this (completions of a claimed command). */
  expect?: PinState;
  /** Fields to set besides the status; unset fields keep their value or the defaults below. */
  set?: Partial<
    Pick<
      PinLedgerTable,
      "owned" | "attempts" | "last_error" | "next_attempt_at" | "deadline_at" | "copies"
    >
  >;
  /** Appended to reconcile_log when the change applies (and changes something or says why not). */
  log?: { decision: Decision; reason: string; outcome: Outcome; error?: string | null };
};

/** Per-item outcome of `applyChanges`: data, never an exception for one bad item. */
export type ChangeResult =
  | { applied: true; from: PinState; to: PinStatus; row: LedgerRow }
  | { applied: false; why: "illegal" | "stale" | "absent"; from: PinState };

export type ApplyOptions = {
  now: Date;
  /** How long a CID may keep failing before it is marked failed (QUASAR_PIN_DEADLINE). */
  pinDeadlineMs: number;
};

const CHUNK = 1_000;

/**
 * Applies events to ledger rows in one transaction the caller provides: locks the existing rows,
 * computes every new status with `transition`, writes each row once and appends the log rows.
 * A row created concurrently by another process (the API) is re-read and the change re-applied,
 * never overwritten blindly.
 */
export async function applyChanges(
  trx: Transaction<Database>,
  changes: readonly LedgerChange[],
  options: ApplyOptions,
): Promise<ChangeResult[]> {
  const results: ChangeResult[] = new Array(changes.length);
  let pending = changes.map((_, i) => i);
  for (let round = 0; pending.length > 0; round++) {
    if (round > 5)
      throw new LedgerContentionError("pin_ledger rows keep changing under a concurrent writer");
    const retry: number[] = [];
    for (let start = 0; start < pending.length; start += CHUNK) {
      const slice = pending.slice(start, start + CHUNK);
      retry.push(...(await applyChunk(trx, changes, slice, results, options)));
    }
    pending = retry;
  }
  return results;
}

async function applyChunk(
  trx: Transaction<Database>,
  changes: readonly LedgerChange[],
  indexes: readonly number[],
  results: ChangeResult[],
  options: ApplyOptions,
): Promise<number[]> {
  const backendIds = [...new Set(indexes.map((i) => (changes[i] as LedgerChange).backendId))];
  const cids = [...new Set(indexes.map((i) => (changes[i] as LedgerChange).cid))];
  const existing = await trx
    .selectFrom("pin_ledger")
    .selectAll()
    .where("backend_id", "=", sql<string>`any(${backendIds}::text[])`)
    .where("cid", "=", sql<string>`any(${cids}::text[])`)
    .orderBy("backend_id")
    .orderBy("cid")
    .forUpdate()
    .execute();
  const rows = new Map<string, LedgerRow>();
  for (const row of existing) rows.set(key(row.backend_id, row.cid), row);
  const wasAbsent = new Set<string>();
  const touched = new Set<string>();
  const logs: Omit<ReconcileLogTable, "id" | "at">[] = [];
  const logOwners: string[] = [];

  for (const i of indexes) {
    const change = changes[i] as LedgerChange;
    const k = key(change.backendId, change.cid);
    const row = rows.get(k);
    const from: PinState = row ? row.status : ABSENT;
    if (change.expect !== undefined && change.expect !== from) {
      results[i] = { applied: false, why: "stale", from };
      continue;
    }
    const to = transition(from, change.event);
    if (isIllegal(to)) {
      results[i] = { applied: false, why: "illegal", from };
      continue;
    }
    if (to === ABSENT) {
      results[i] = { applied: false, why: "absent", from };
      continue;
    }
    const next = nextRow(row, change, from, to, options);
    if (!row) wasAbsent.add(k);
    rows.set(k, next);
    touched.add(k);
    results[i] = { applied: true, from, to, row: next };
    if (change.log) {
      logs.push({
        backend_id: change.backendId,
        cid: change.cid,
        decision: change.log.decision,
        reason: change.log.reason,
        outcome: change.log.outcome,
        error: change.log.error ?? null,
      });
      logOwners.push(k);
    }
  }

  const inserts: LedgerRow[] = [];
  const updates: LedgerRow[] = [];
  for (const k of touched) {
    const row = rows.get(k) as LedgerRow;
    (wasAbsent.has(k) ? inserts : updates).push(row);
  }

  const conflicted = new Set<string>();
  if (inserts.length > 0) {
    const inserted = await trx
      .insertInto("pin_ledger")
      .values(inserts)
      .onConflict((oc) => oc.columns(["backend_id", "cid"]).doNothing())
      .returning(["backend_id", "cid"])
      .execute();
    const done = new Set(inserted.map((r) => key(r.backend_id, r.cid)));
    for (const row of inserts) {
      const k = key(row.backend_id, row.cid);
      if (!done.has(k)) conflicted.add(k);
    }
  }
  if (updates.length > 0) {
    // The rows are locked FOR UPDATE above: overwriting them with the computed values is safe.
    await trx
      .insertInto("pin_ledger")
      .values(updates)
      .onConflict((oc) =>
        oc.columns(["backend_id", "cid"]).doUpdateSet((eb) => ({
          status: eb.ref("excluded.status"),
          owned: eb.ref("excluded.owned"),
          attempts: eb.ref("excluded.attempts"),
          last_error: eb.ref("excluded.last_error"),
          next_attempt_at: eb.ref("excluded.next_attempt_at"),
          first_queued_at: eb.ref("excluded.first_queued_at"),
          updated_at: eb.ref("excluded.updated_at"),
          deadline_at: eb.ref("excluded.deadline_at"),
          copies: eb.ref("excluded.copies"),
        })),
      )
      .execute();
  }
  const keptLogs = logs.filter((_, j) => !conflicted.has(logOwners[j] as string));
  if (keptLogs.length > 0) await trx.insertInto("reconcile_log").values(keptLogs).execute();

  // Another writer created these rows after our read: redo those changes against the new rows.
  if (conflicted.size === 0) return [];
  return indexes.filter((i) => {
    const change = changes[i] as LedgerChange;
    return conflicted.has(key(change.backendId, change.cid));
  });
}

function nextRow(
  row: LedgerRow | undefined,
  change: LedgerChange,
  from: PinState,
  to: PinStatus,
  { now, pinDeadlineMs }: ApplyOptions,
): LedgerRow {
  const base: LedgerRow = row ?? {
    backend_id: change.backendId,
    cid: change.cid,
    status: to,
    owned: false,
    attempts: 0,
    last_error: null,
    next_attempt_at: now,
    first_queued_at: now,
    updated_at: now,
    deadline_at: null,
    copies: null,
  };
  const next: LedgerRow = { ...base, status: to, updated_at: now };
  const wantedBefore = from !== ABSENT && (WANTED_STATUSES as readonly string[]).includes(from);
  const wantedAfter = (WANTED_STATUSES as readonly string[]).includes(to);
  if (to === "queued" && !wantedBefore) {
    // A fresh pin request: new queue, its own deadline.
    next.attempts = 0;
    next.last_error = null;
    next.next_attempt_at = now;
    next.first_queued_at = now;
    next.deadline_at = new Date(now.getTime() + pinDeadlineMs);
  } else if (to === "unpin_queued" && from !== "unpin_queued" && from !== "unpinning") {
    next.attempts = 0;
    next.last_error = null;
    next.next_attempt_at = now;
    next.first_queued_at = now;
    next.deadline_at = null;
  } else if (to === "queued" && from === "pinned") {
    // Lost from the backend: pin again right away, with a fresh deadline.
    next.attempts = 0;
    next.next_attempt_at = now;
    next.first_queued_at = now;
    next.deadline_at = new Date(now.getTime() + pinDeadlineMs);
  }
  // Quasar holds no pin any more: a later pin must check again for a foreign one.
  if (to === "unpinned") next.owned = false;
  if (to === "pinned" || to === "unpinned") {
    next.last_error = null;
    if (!wantedAfter) next.deadline_at = null;
  }
  if (change.set) Object.assign(next, change.set);
  return next;
}

function key(backendId: string, cid: string): string {
  return `${backendId}\u0000${cid}`;
}

/**
 * Records, inside the caller's transaction, that Quasar itself pinned `cid` on `backendId`
 * (the API pinned an upload): status pinned, owned true, so a later unpin is allowed and the
 * engine never mistakes the pin for a foreign one. Call it in the same transaction as the
 * optimistic pin row. Pass `schema` unless `trx` is already scoped to the reconciler schema.
 */
export async function recordOwnedPin(
  trx: Transaction<Database>,
  options: { backendId: string; cid: string; schema?: string; now?: Date; reason?: string },
): Promise<void> {
  const scoped = options.schema ? trx.withSchema(options.schema) : trx;
  const [result] = await applyChanges(
    scoped,
    [
      {
        backendId: options.backendId,
        cid: options.cid,
        event: "record_owned",
        set: { owned: true },
        log: {
          decision: "record_owned",
          reason: options.reason ?? "uploaded and pinned through the API",
          outcome: "ok",
        },
      },
    ],
    // record_owned never queues a pin, so the deadline is never read.
    { now: options.now ?? new Date(), pinDeadlineMs: 0 },
  );
  if (!result?.applied) {
    throw new IllegalTransitionError(
      result?.from ?? "unknown",
      "record_owned",
      `${options.backendId} ${options.cid}`,
    );
  }
}

/** A scoped handle on the ledger tables for the engine's reads outside transactions. */
export function ledgerDb(db: Kysely<Database>, schema: string): Kysely<Database> {
  return db.withSchema(schema);
}

/** Reads one row (tests, status, audit). */
export async function getLedgerRow(
  db: Kysely<Database>,
  backendId: string,
  cid: string,
): Promise<LedgerRow | undefined> {
  const row = await db
    .selectFrom("pin_ledger")
    .selectAll()
    .where("backend_id", "=", backendId)
    .where("cid", "=", cid)
    .executeTakeFirst();
  if (row && !isPinStatus(row.status)) throw new IllegalTransitionError(String(row.status), "read");
  return row;
}
