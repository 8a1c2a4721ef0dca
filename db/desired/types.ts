import type { Kysely } from "kysely";
import type { Logger } from "pino";
import type { DesiredReason } from "@/core/desired/reasons.js";
import type { Database } from "../database.js";

export type { DesiredReason } from "@/core/desired/reasons.js";

/**
 * The reconciler's persisted, incremental desired set: the contract the engine and the API
 * code against. The rules themselves live in core/desired/ (shared with the auditors);
 * this store only decides which CIDs to re-evaluate and keeps the answer in Postgres.
 *
 * Reorg safety: only the finalized prefix of each chain is folded into persisted state;
 * the unfinalized tail is recomputed in memory at every step as an overlay.
 */

/** One CID whose desiredness or reasons changed in a step. */
export type DesiredChange = {
  cid: string;
  /** True when the CID is desired after the step. */
  desired: boolean;
  /** Every reason that holds after the step; empty when not desired. */
  reasons: DesiredReason[];
};

/**
 * A bounded step's answer: every release, and wants up to `maxChanges` changes in all;
 * `truncated` when more wants were written than returned (a first fold of a long history).
 * The caller then re-derives its work from the desired set itself (the engine: a sweep, which
 * streams in bounded memory).
 */
export type DesiredStepResult = {
  changes: DesiredChange[];
  truncated: boolean;
  /** Rows the step wrote (events folded, desired rows upserted or removed). */
  rowsWritten: number;
};

/** Counts of desired CIDs, by reason kind (a CID with two kinds of reasons counts in both). */
export type DesiredCounts = Record<
  "desired" | "confirmed" | "pending" | "optimistic" | "demoted" | "psa",
  number
>;

/** How far the store has folded each chain's events. */
export type DesiredLag = {
  chainId: number;
  /** Highest block in the indexer's event table (Ponder's latest checkpoint). */
  indexedBlock: bigint;
  /** Highest final block (Ponder's finalized checkpoint). */
  finalizedBlock: bigint;
  /** Highest final block folded into the persisted state. */
  foldedBlock: bigint;
};

export interface DesiredStore {
  /**
   * Folds new final events, recomputes the unfinalized overlay, applies TTL expiries due by
   * `now`; returns only CIDs whose desiredness or reasons changed since the previous step.
   * Idempotent and crash-safe (one transaction per step); concurrent steps are serialised.
   */
  step(options: { now: Date; signal?: AbortSignal }): Promise<DesiredChange[]>;
  /**
   * The same step, returning wants only up to `maxChanges` changes (all are written; releases
   * are always returned): what the engine calls, so a first fold's memory does not grow with
   * the history.
   */
  boundedStep(options: {
    now: Date;
    signal?: AbortSignal;
    maxChanges: number;
  }): Promise<DesiredStepResult>;
  /** Streams every desired CID in ascending order, with bounded memory (keyset pages). */
  streamDesired(options?: { signal?: AbortSignal }): AsyncIterable<string>;
  /**
   * The same stream in pages of ascending CIDs (one await per page instead of per CID:
   * what diffPins wants at a million CIDs).
   */
  streamDesiredPages(options?: { signal?: AbortSignal }): AsyncIterable<string[]>;
  /** The same pages as texts, one CID a line (what the sweep's diff reads as bytes). */
  streamDesiredText(options?: { signal?: AbortSignal }): AsyncIterable<DesiredTextPage>;
  /** Why one CID is desired as of the last step (empty when it is not). Accepts any CID spelling. */
  reasonsFor(cid: string): Promise<DesiredReason[]>;
  /** Counts for metrics and `quasar status`. */
  counts(): Promise<DesiredCounts>;
  /** Events lag: the indexer's progress vs what has been folded, per chain. */
  lag(): Promise<DesiredLag[]>;
  /**
   * The earliest time-based change (an upload's or a demoted CID's expiry) among the desired
   * CIDs as of the last step; null when none is scheduled. The engine wakes for it.
   */
  nextChangeAt(): Promise<Date | null>;
}

export type CreateDesiredStoreParams = {
  /** Quasar's database (connectDatabase); the store scopes every query to a schema. */
  db: Kysely<Database>;
  /** Schema Ponder writes the event table and _ponder_checkpoint to (QUASAR_INDEXER_SCHEMA). */
  indexerSchema: string;
  /** Schema of the reconciler's tables, migrated by db/migrations (QUASAR_RECONCILER_SCHEMA). */
  reconcilerSchema: string;
  /** QUASAR_PIN_TTL in milliseconds. */
  ttlMs: number;
  logger?: Logger;
  /**
   * Affected CIDs a step holds in memory before it moves them to a temporary table (default
   * 50,000). Lower only to test that path.
   */
  affectedInMemory?: number;
  /**
   * Rows one step writes above which the store vacuums its tables after it (default 100,000:
   * a first fold or a long catch-up). Lower only to test that path.
   */
  vacuumAfterRows?: number;
};

/** A page of desired CIDs as one text: `count` CIDs in ascending order, one a line. */
export type DesiredTextPage = { text: string; count: number };
