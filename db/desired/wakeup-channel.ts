/**
 * The PostgreSQL channel on which queued desired-step work is announced (migration 0008), with
 * the reconciler schema's name as payload: one channel for every schema, as a channel name is
 * limited to 63 bytes and a schema name may use them all.
 */
export const DESIRED_WAKEUP_CHANNEL = "quasar_desired_work";

/**
 * Ponder's live-query channel of an indexer schema (ponder 0.17: `getLiveQueryChannelName`).
 * At the commit of each block it indexes live, Ponder announces there the JSON array of the
 * tables that block wrote; `test/indexer-wakeups.test.ts` fails if an upgrade moves it.
 * Ponder's own tables are announced by its triggers, so nothing of ours is added to them and
 * a re-index, which recreates them, keeps the announcements.
 */
export const indexerLiveChannel = (indexerSchema: string): string => `${indexerSchema}_live_query`;

/** The indexer's table of chain events (ponder.schema.ts), as Ponder names it in those payloads. */
export const INDEXER_EVENT_TABLE = "event";

/** Whether a live-query payload says the block wrote chain events (not only a checkpoint). */
export function announcesChainEvents(payload: string | undefined): boolean {
  try {
    const tables: unknown = JSON.parse(payload ?? "");
    return Array.isArray(tables) && tables.includes(INDEXER_EVENT_TABLE);
  } catch {
    return false;
  }
}
