import { type Kysely, sql } from "kysely";
import { contractKey } from "@/core/desired/timeline.js";
import type { Database } from "../database.js";

/** Where each chain's fold stands: its last folded block and event. */
export type FoldCursor = { block: bigint; eventId: string | null };

/** What a step picks up at its start, besides the indexer's progress. */
export type StepStart = {
  cursors: Map<number, FoldCursor>;
  /** CIDs the API queued (uploads, PSA requests); taken off the queue by this read. */
  dirtyCids: string[];
  /** Contracts the API queued (off-chain registrations), as contract keys; taken off too. */
  dirtyContracts: string[];
  /** Contracts whose stored standing is not final yet, as contract keys. */
  provisionalContracts: string[];
  /**
   * CIDs whose answer used the previous tail or has a time-based change due; null when there
   * are more than the `dueLimit` asked for (the caller then selects them where they lie).
   */
  dueCids: string[] | null;
};

/** int8 arrays come back as strings: connectDatabase parses only plain int8 as bigint. */
type Row = {
  cursor_chain: string[];
  cursor_block: string[];
  cursor_event: (string | null)[];
  dirty_cids: string[];
  dirty_chain: string[];
  dirty_contract: string[];
  provisional_chain: string[];
  provisional_contract: string[];
  due_cids: string[];
};

/**
 * Reads and dequeues, in one statement, what the step needs before it folds: a step is a
 * handful of statements, and each round trip through pg costs more than the lookups it carries
 * (these five were each a statement of their own). Run it after the step's lock, in the
 * step's transaction: the queues' rows come back only if the step commits.
 */
export async function readStepStart(
  db: Kysely<Database>,
  reconcilerSchema: string,
  now: Date,
  dueLimit: number,
): Promise<StepStart> {
  const table = (name: string) => sql.id(reconcilerSchema, name);
  const { rows } = await sql<Row>`with
      dirty_cid as (delete from ${table("desired_dirty_cid")} returning cid),
      dirty_contract as (delete from ${table("desired_dirty_contract")} returning chain_id, contract),
      provisional as (select chain_id, contract from ${table("contract_standing")}
        where standing_final = false),
      -- A union, each arm served by its partial index (an OR would scan the whole set).
      due as (select cid from ${table("desired_cid")} where uses_tail = true
        union all
        select cid from ${table("desired_cid")} where next_change_at <= ${now}
        limit ${dueLimit + 1})
    select
      array(select chain_id from ${table("desired_cursor")} order by chain_id) as cursor_chain,
      array(select folded_block from ${table("desired_cursor")} order by chain_id) as cursor_block,
      array(select folded_event_id from ${table("desired_cursor")} order by chain_id) as cursor_event,
      array(select cid from dirty_cid) as dirty_cids,
      array(select chain_id from dirty_contract order by chain_id, contract) as dirty_chain,
      array(select contract from dirty_contract order by chain_id, contract) as dirty_contract,
      array(select chain_id from provisional order by chain_id, contract) as provisional_chain,
      array(select contract from provisional order by chain_id, contract) as provisional_contract,
      array(select cid from due) as due_cids`.execute(db);
  const row = rows[0] as Row;
  const keys = (chains: string[], contracts: string[]) =>
    chains.map((chain, i) => contractKey(Number(chain), contracts[i] as string));
  return {
    cursors: new Map(
      row.cursor_chain.map((chain, i) => [
        Number(chain),
        { block: BigInt(row.cursor_block[i] as string), eventId: row.cursor_event[i] ?? null },
      ]),
    ),
    dirtyCids: row.dirty_cids,
    dirtyContracts: keys(row.dirty_chain, row.dirty_contract),
    provisionalContracts: keys(row.provisional_chain, row.provisional_contract),
    dueCids: row.due_cids.length > dueLimit ? null : row.due_cids,
  };
}
