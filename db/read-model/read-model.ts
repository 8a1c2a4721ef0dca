import { type Kysely, type Selectable, sql } from "kysely";
import {
  type ChainEvent,
  type ChainProgress,
  EVENT_KINDS,
  type EventKind,
  type Hex,
} from "@/src/events.js";
import type { Database } from "../database.js";
import { isMissingRelation } from "../errors.js";
import { completeBlockOf, decodeCheckpoint } from "./checkpoint.js";
import { IndexerNotReadyError, MalformedEventRowError } from "./errors.js";
import type { StorageContractStatus } from "./registrations.js";
import type { EventTable } from "./tables.js";

/**
 * The indexer's history as every other process reads it: typed rows, ordered by Ponder's
 * event id, and each chain's progress, without knowing Ponder's tables.
 *
 * Ordering and reorgs: ids sort every event of every chain, but chains are indexed
 * independently and unfinalized blocks can be reorged (their rows deleted and replaced), so
 * a row may appear below a cursor a reader has already passed. Everything at or below
 * `horizon().finalized` is final: no row there will ever appear, change or disappear. A
 * reader that must never miss a row pages with `eventsAfter(cursor, limit, { upTo: horizon.finalized })`
 * and treats anything above the horizon as provisional (re-read it every time).
 */
export type ReadModel = {
  /** Schema the indexer writes (Ponder's `--schema`). */
  readonly schema: string;
  /** Events with id > cursor (all when null), ordered by id, at most `limit`; `upTo` caps the id (inclusive). */
  eventsAfter(
    cursor: string | null,
    limit: number,
    options?: { upTo?: string },
  ): Promise<ChainEvent[]>;
  /** One chain's events in blocks [fromBlock, toBlock], ordered by id. */
  eventsInBlocks(chainId: number, fromBlock: bigint, toBlock: bigint): Promise<ChainEvent[]>;
  /** Every PinHash row whose normalised CID is `cid` (pass a normalised CID), ordered by id. */
  pinHashesOf(cid: string): Promise<ChainEvent[]>;
  /** Per chain: the highest block fully in the table, and the highest finalized block. */
  progress(): Promise<ChainProgress[]>;
  /**
   * `progress()` and, in the same statement, the first `limit` events (by id) of each chain in
   * `afterBlock` above the block given for it: one round trip for a reader that follows the
   * chains block by block (the desired step). Chains without such events, and chains not in
   * `afterBlock`, are absent from `above`.
   */
  progressWithEventsAbove(
    afterBlock: ReadonlyMap<number, bigint>,
    limit: number,
  ): Promise<{ progress: ChainProgress[]; above: Map<number, ChainEvent[]> }>;
  /**
   * Event-id bounds over all chains: `finalized` is the minimum of the chains' finalized
   * checkpoints (every row at or below it is final), `latest` the minimum of their latest
   * checkpoints. Null before the indexer has recorded any chain.
   */
  horizon(): Promise<{ finalized: string; latest: string } | null>;
  /** Whether Ponder has finished the historical backfill (its /ready answers 200). */
  isReady(): Promise<boolean>;
  /** Each storage contract ever named by a registry, with its latest standing, per chain. */
  storageContracts(): Promise<StorageContractStatus[]>;
};

export type CreateReadModelOptions = {
  /** Quasar's database (connectDatabase) or a transaction on it; the caller owns it. */
  db: Kysely<Database>;
  /** The indexer's schema (QUASAR_INDEXER_SCHEMA / ponder start --schema). */
  schema: string;
};

/** Creates a read model over one indexer schema. Queries only; never writes. */
export function createReadModel(options: CreateReadModelOptions): ReadModel {
  const { schema } = options;
  const db = options.db.withSchema(schema);

  const guard = async <T>(query: () => Promise<T>): Promise<T> => {
    try {
      return await query();
    } catch (error) {
      // Ponder has not created its schema or tables yet.
      if (isMissingRelation(error)) throw new IndexerNotReadyError(schema, { cause: error });
      throw error;
    }
  };

  const selectEvents = () => db.selectFrom("event").selectAll();

  const checkpoints = () =>
    guard(() =>
      db
        .selectFrom("_ponder_checkpoint")
        .select(["chain_id", "latest_checkpoint", "finalized_checkpoint"])
        .orderBy("chain_id")
        .execute(),
    );

  return {
    schema,

    async eventsAfter(cursor, limit, { upTo } = {}) {
      let query = selectEvents();
      if (cursor !== null) query = query.where("id", ">", cursor);
      if (upTo !== undefined) query = query.where("id", "<=", upTo);
      const rows = await guard(() => query.orderBy("id").limit(limit).execute());
      return rows.map(toChainEvent);
    },

    async eventsInBlocks(chainId, fromBlock, toBlock) {
      const rows = await guard(() =>
        selectEvents()
          .where("chain_id", "=", chainId)
          .where("block_number", ">=", fromBlock)
          .where("block_number", "<=", toBlock)
          .orderBy("id")
          .execute(),
      );
      return rows.map(toChainEvent);
    },

    async pinHashesOf(cid) {
      const rows = await guard(() =>
        selectEvents()
          .where("kind", "=", "pin_hash")
          .where("cid", "=", cid)
          .orderBy("id")
          .execute(),
      );
      return rows.map(toChainEvent);
    },

    async progress() {
      return (await checkpoints()).flatMap((row) => toProgress(row) ?? []);
    },

    async progressWithEventsAbove(afterBlock, limit) {
      // One arm per chain, its block a parameter: the planner then sees how few rows lie
      // above it and reads them through (chain_id, block_number). A bound it cannot see
      // (a join, a subquery) lets it walk the primary key in id order over the whole history.
      const arms = [...afterBlock].map(
        ([chainId, block]) => sql`(select * from ${sql.id(schema, "event")}
          where chain_id = ${chainId} and block_number > ${block} order by id limit ${limit})`,
      );
      const events =
        arms.length > 0
          ? sql.join(arms, sql` union all `)
          : sql`select * from ${sql.id(schema, "event")} where false`;
      // One row per event above a chain's block, or one row without an event for a chain
      // that has none; the checkpoint's columns ride along on each.
      const { rows } = await guard(() =>
        sql<CheckpointRow & NullableEvent>`select c.chain_id, c.latest_checkpoint,
            c.finalized_checkpoint, e.id, e.block_number, e.block_hash, e.block_timestamp,
            e.transaction_hash, e.log_index, e.contract, e.kind, e.subject, e.raw_cid, e.cid,
            e.invalid_reason
          from ${sql.id(schema, "_ponder_checkpoint")} as c
          left join (${events}) as e on e.chain_id = c.chain_id
          order by c.chain_id, e.id`.execute(options.db),
      );
      const progress: ChainProgress[] = [];
      const above = new Map<number, ChainEvent[]>();
      // Rows come ordered by chain: decode each chain's checkpoints once, on its first row.
      let rowChain: string | undefined;
      let chain: ChainProgress | undefined;
      for (const row of rows) {
        if (String(row.chain_id) !== rowChain) {
          rowChain = String(row.chain_id);
          chain = toProgress(row);
          if (chain !== undefined) progress.push(chain);
        }
        if (chain === undefined || row.id === null) continue;
        const events = above.get(chain.chainId) ?? [];
        events.push(toChainEvent(row as Selectable<EventTable>));
        above.set(chain.chainId, events);
      }
      return { progress, above };
    },

    async horizon() {
      const rows = await checkpoints();
      if (rows.length === 0) return null;
      const min = (values: string[]) => [...values].sort()[0] as string;
      return {
        finalized: min(rows.map((row) => row.finalized_checkpoint)),
        latest: min(rows.map((row) => row.latest_checkpoint)),
      };
    },

    async isReady() {
      const row = await guard(() =>
        db.selectFrom("_ponder_meta").select("value").where("key", "=", "app").executeTakeFirst(),
      );
      return row?.value.is_ready === 1;
    },

    async storageContracts() {
      // The last register/unregister per (chain, contract) decides its standing.
      const rows = await guard(() =>
        db
          .selectFrom("event")
          .select(["chain_id", "subject", "kind", "id", "block_number"])
          .distinctOn(["chain_id", "subject"])
          .where("kind", "in", ["register", "unregister"])
          .where("subject", "is not", null)
          .orderBy("chain_id")
          .orderBy("subject")
          .orderBy("id", "desc")
          .execute(),
      );
      return rows.map((row) => ({
        chainId: Number(row.chain_id),
        contract: row.subject as Hex,
        registered: row.kind === "register",
        sinceEventId: row.id,
        sinceBlock: BigInt(row.block_number),
      }));
    },
  };
}

type CheckpointRow = {
  chain_id: bigint | number | string;
  latest_checkpoint: string;
  finalized_checkpoint: string;
};

/** An event's columns (chain_id aside), all null on a chain's row without an event. */
type NullableEvent = {
  [K in Exclude<keyof Selectable<EventTable>, "chain_id">]: Selectable<EventTable>[K] | null;
};

/** A chain's progress from its checkpoints; undefined while they cannot be decoded. */
function toProgress(row: CheckpointRow): ChainProgress | undefined {
  const chainId = Number(row.chain_id);
  const latest = decodeCheckpoint(row.latest_checkpoint);
  const finalized = decodeCheckpoint(row.finalized_checkpoint);
  if (latest === undefined || finalized === undefined) return undefined;
  return {
    chainId,
    indexedBlock: completeBlockOf(latest),
    // A checkpoint of another chain (what omnichain ordering writes) says nothing
    // about this one's blocks: report nothing final rather than a wrong block.
    finalizedBlock: finalized.chainId === chainId ? completeBlockOf(finalized) : 0n,
  };
}

const isEventKind = (kind: string): kind is EventKind =>
  (EVENT_KINDS as readonly string[]).includes(kind);

/** Converts a row of the event table to the shared `ChainEvent` type. */
export function toChainEvent(row: Selectable<EventTable>): ChainEvent {
  if (!isEventKind(row.kind))
    throw new MalformedEventRowError(row.id, `unknown kind "${row.kind}"`);
  return {
    id: row.id,
    chainId: Number(row.chain_id),
    // BigInt(): the caller's pool may not parse int8 as bigint (connectDatabase does).
    blockNumber: BigInt(row.block_number),
    blockHash: row.block_hash,
    blockTimestamp: BigInt(row.block_timestamp),
    transactionHash: row.transaction_hash,
    logIndex: row.log_index,
    contract: row.contract,
    kind: row.kind,
    subject: row.subject,
    rawCid: row.raw_cid,
    cid: row.cid,
    invalidReason: row.invalid_reason,
  };
}
