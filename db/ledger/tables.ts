import type { Generated } from "kysely";
import type { PinStatus } from "./pin-status.js";

/** Row of pin_ledger as stored (snake_case, as in db/migrations/0002_ledger.ts). */
export type PinLedgerTable = {
  backend_id: string;
  cid: string;
  status: PinStatus;
  owned: boolean;
  attempts: number;
  last_error: string | null;
  next_attempt_at: Date;
  first_queued_at: Date;
  updated_at: Date;
  deadline_at: Date | null;
  /** Copies the backend holds while pinned, where it keeps several (IPFS Cluster); null: one. */
  copies: number | null;
};

/** What the reconciler decided for one (backend, cid), and why. */
export const DECISIONS = [
  "queue",
  "pin",
  "unpin",
  "copy",
  "adopt",
  "mark_failed",
  "skip_foreign",
  "release",
  "requeue",
  "recover",
  "record_owned",
] as const;
export type Decision = (typeof DECISIONS)[number];

export const OUTCOMES = ["started", "ok", "error"] as const;
export type Outcome = (typeof OUTCOMES)[number];

export type ReconcileLogTable = {
  id: Generated<bigint>;
  at: Generated<Date>;
  backend_id: string;
  cid: string;
  decision: Decision;
  reason: string;
  outcome: Outcome;
  error: string | null;
};

/** The ledger's tables, part of the one database type (db/database.ts). */
export type LedgerTables = { pin_ledger: PinLedgerTable; reconcile_log: ReconcileLogTable };
