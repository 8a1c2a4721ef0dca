import { NonRetryableError, RetryableError } from "@/core/errors.js";

/**
 * The indexer's tables are not there yet (Ponder has not started on this schema, or is
 * still creating them). Retry later; never read this as "no events", which would make a
 * reconciler think nothing should be pinned.
 */
export class IndexerNotReadyError extends RetryableError {
  override name = "IndexerNotReadyError";
  constructor(schema: string, options: { cause?: unknown } = {}) {
    super(`the indexer's tables in schema "${schema}" do not exist yet`, {
      ...options,
      details: "start the indexer (ponder start --schema <name>) on this schema and retry",
    });
  }
}

/** A row the indexer wrote does not have the shape the read model expects. */
export class MalformedEventRowError extends NonRetryableError {
  override name = "MalformedEventRowError";
  constructor(id: string, problem: string) {
    super(`event row ${id} is malformed: ${problem}`, {
      details:
        "the indexer schema was written by another version of Quasar; reindex into a fresh schema",
    });
  }
}
