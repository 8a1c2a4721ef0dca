import { type Kysely, type RawBuilder, sql, type Transaction } from "kysely";
import type { Logger } from "pino";
import { type EvaluationContext, evaluateCid, type PinRef } from "@/core/desired/evaluate.js";
import { contractKey, insertAction, type RegistrationAction } from "@/core/desired/timeline.js";
import type { ChainEvent, ChainProgress, Hex } from "@/src/events.js";
import type { Database } from "../database.js";
import { createReadModel, toChainEvent } from "../read-model/index.js";
import { AffectedCids } from "./affected.js";
import {
  type DesiredRow,
  decideAnswer,
  decideStanding,
  foldEvents,
  foldLimit,
  overlayTail,
  reasonFlags,
} from "./decide.js";
import { loadPageInputs } from "./page-inputs.js";
import { cidsOfContractPage, loadTimelines, parseContractKey } from "./persisted.js";
import { type FoldCursor, readStepStart, type StepStart } from "./step-start.js";
import type { DesiredChange, DesiredStepResult } from "./types.js";

/**
 * One step of the incremental desired store, inside one transaction:
 *  1. fold each chain's newly final events (block ≤ min(finalized, indexed)) into the
 *     persisted state, advancing its cursor;
 *  2. read the unfinalized tail (blocks above that) into an in-memory overlay;
 *  3. collect the CIDs whose answer may have changed: newly folded or tail PinHashes, CIDs
 *     whose answer used the previous tail, CIDs with a time-based change due, uploads and
 *     off-chain registrations queued by the API, and every CID of a contract whose standing moved;
 *  4. evaluate those with the shared rules (core/desired/evaluate.ts) and write only
 *     the rows that changed.
 * Cost follows the change (plus the tail), never the history. The decisions are pure
 * functions in decide.ts; this file only reads and writes.
 */
export type StepParams = {
  trx: Transaction<Database>;
  indexerSchema: string;
  reconcilerSchema: string;
  ttlMs: number;
  now: Date;
  signal?: AbortSignal;
  logger?: Logger;
  /** Changes returned at most; the rest are written but not returned (`truncated`). */
  maxChanges?: number;
  /** Affected CIDs held in memory before they spill (default AFFECTED_IN_MEMORY). */
  affectedInMemory?: number;
};

/** Rows folded or evaluated per query: bounds memory and statement size. */
const FOLD_PAGE = 5_000;
const EVALUATE_PAGE = 1_000;
/** Events folded in one step above which the fold tables are analysed before evaluating. */
const ANALYZE_AFTER_FOLDED = 50_000;
/** CIDs of one contract read per query when its standing moves. */
const CONTRACT_PAGE = 20_000;
/** Affected CIDs held in memory; beyond, they move to a temporary table (affected.ts). */
const AFFECTED_IN_MEMORY = 50_000;

/** What the fold and the tail leave for the collection and the evaluation. */
type Overlay = {
  affectedCids: AffectedCids;
  standingCandidates: Set<string>;
  tailRefs: Map<string, PinRef[]>;
  tailActions: Map<string, RegistrationAction[]>;
  folded: number;
  tailSize: number;
};

export async function runStep(params: StepParams): Promise<DesiredStepResult> {
  const { trx, now } = params;
  const started = performance.now();
  // Milliseconds per phase, for the debug log: where a slow step spends its time.
  const phases: Record<string, number> = {};
  let mark = started;
  const phase = (name: string) => {
    const at = performance.now();
    phases[name] = Math.round((at - mark) * 10) / 10;
    mark = at;
  };
  const db = trx.withSchema(params.reconcilerSchema);
  // Steps of one reconciler schema run one at a time, whichever process calls them.
  // Every query below is an index lookup. Tables this very transaction has grown (a first
  // fold of a long history) have no statistics yet, and the planner then estimates
  // `cid = any(<1000 values>)` as the whole table and scans it once per page: seq scans off.
  // That inflates the cost of the seq scans left on tiny tables past JIT's threshold, and
  // compiling them would cost hundreds of ms per step: JIT off (no step query needs it).
  // One statement, one round trip.
  await sql`select pg_advisory_xact_lock(hashtext(${`${params.reconcilerSchema}.desired`})),
    set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)`.execute(trx);

  const start = await readStepStart(db, params.reconcilerSchema, now, spillAt(params));
  const { progress, above } = await createReadModel({
    db: trx,
    schema: params.indexerSchema,
  }).progressWithEventsAbove(
    new Map([...start.cursors].map(([chainId, cursor]) => [chainId, cursor.block])),
    FOLD_PAGE,
  );
  const finalized = new Map(progress.map((chain) => [chain.chainId, chain.finalizedBlock]));
  const finalizedBlockOf = (chainId: number) => finalized.get(chainId) ?? -1n;

  const overlay = await foldAndReadTail(params, progress, start.cursors, above);
  // A large fold (a first start on a long history) grew pin_ref inside this transaction;
  // give the planner its real size for the evaluation below (ANALYZE sees our own rows).
  if (overlay.folded >= ANALYZE_AFTER_FOLDED) {
    await sql`analyze ${sql.id(params.reconcilerSchema, "pin_ref")}, ${sql.id(params.reconcilerSchema, "registration_event")}`.execute(
      trx,
    );
  }
  phase("foldAndTail");

  // Timelines of every contract looked at in this step: the persisted fold plus the tail.
  const timelineCache = new Map<string, RegistrationAction[]>();
  const timelinesFor = async (keys: Iterable<string>) => {
    const missing = [...keys].filter((key) => !timelineCache.has(key));
    for (const [key, timeline] of await loadTimelines(db, missing)) {
      for (const action of overlay.tailActions.get(key) ?? []) insertAction(timeline, action);
      timelineCache.set(key, timeline);
    }
  };
  await collectAffected(db, overlay, start, timelinesFor, timelineCache, finalizedBlockOf, now);
  phase("collect");

  const context: EvaluationContext = {
    timelineOf: (chainId: number, contract: Hex) =>
      timelineCache.get(contractKey(chainId, contract)) ?? [],
    finalizedBlockOf,
    now,
    ttlMs: params.ttlMs,
  };
  const result = await evaluateAffected(params, overlay, context, timelinesFor);
  phase("evaluate");
  params.logger?.debug(
    {
      phases,
      msg: "desired step",
      folded: overlay.folded,
      tail: overlay.tailSize,
      evaluated: overlay.affectedCids.size,
      spilled: overlay.affectedCids.isSpilled,
      changes: result.changes.length,
      truncated: result.truncated,
      ms: Math.round(performance.now() - started),
    },
    "desired step",
  );
  return result;
}

const spillAt = (params: StepParams) => params.affectedInMemory ?? AFFECTED_IN_MEMORY;

/** 1 and 2: folds each chain's newly final events and reads its unfinalized tail. */
async function foldAndReadTail(
  params: StepParams,
  progress: ChainProgress[],
  cursors: Map<number, FoldCursor>,
  aboveCursors: Map<number, ChainEvent[]>,
): Promise<Overlay> {
  const { trx, now, signal } = params;
  const events = trx.withSchema(params.indexerSchema);
  const overlay: Overlay = {
    affectedCids: new AffectedCids(trx, spillAt(params)),
    standingCandidates: new Set(),
    tailRefs: new Map(),
    tailActions: new Map(),
    folded: 0,
    tailSize: 0,
  };

  for (const chain of progress) {
    const limit = foldLimit(chain);
    const known = cursors.get(chain.chainId);
    const cursor = known ?? { block: -1n, eventId: null };
    // Everything above the cursor, read with the progress: all of it when it fits in a page
    // (an incremental step: a few new events, final or not). A longer catch-up, or a chain's
    // first fold, pages its fold and then reads its tail.
    const read = known === undefined ? undefined : (aboveCursors.get(chain.chainId) ?? []);
    const whole = read !== undefined && read.length < FOLD_PAGE ? read : undefined;
    if (limit > cursor.block) {
      let lastId: string | null = null;
      const fold = async (page: ChainEvent[], cursorWrite?: CursorWrite) => {
        await writeFold(trx, params.reconcilerSchema, page, overlay, cursorWrite);
        overlay.folded += page.length;
        lastId = (page[page.length - 1] as ChainEvent).id;
      };
      const cursorAfter = (eventId: string | null): CursorWrite => ({
        chainId: chain.chainId,
        block: limit,
        eventId,
        at: now,
      });
      if (whole) {
        // The final events and the cursor after them: one statement.
        const final = whole.filter((event) => event.blockNumber <= limit);
        const lastFinal = final.at(-1);
        if (lastFinal) await fold(final, cursorAfter(lastFinal.id));
        else await cursorUpsert(params.reconcilerSchema, cursorAfter(cursor.eventId)).execute(trx);
      } else {
        for (;;) {
          signal?.throwIfAborted();
          let query = events
            .selectFrom("event")
            .selectAll()
            .where("chain_id", "=", chain.chainId)
            .where("block_number", ">", cursor.block)
            .where("block_number", "<=", limit);
          if (lastId !== null) query = query.where("id", ">", lastId);
          const page = (await query.orderBy("id").limit(FOLD_PAGE).execute()).map(toChainEvent);
          if (page.length === 0) break;
          await fold(page);
          if (page.length < FOLD_PAGE) break;
        }
        await cursorUpsert(params.reconcilerSchema, cursorAfter(lastId ?? cursor.eventId)).execute(
          trx,
        );
      }
    }

    const tailFrom = limit > cursor.block ? limit : cursor.block;
    const tail = whole
      ? whole.filter((event) => event.blockNumber > tailFrom)
      : (
          await events
            .selectFrom("event")
            .selectAll()
            .where("chain_id", "=", chain.chainId)
            .where("block_number", ">", tailFrom)
            .orderBy("id")
            .execute()
        ).map(toChainEvent);
    overlay.tailSize += tail.length;
    overlayTail(tail, { refs: overlay.tailRefs, actions: overlay.tailActions });
  }
  await overlay.affectedCids.add(overlay.tailRefs.keys());
  for (const key of overlay.tailActions.keys()) overlay.standingCandidates.add(key);
  return overlay;
}

/** A chain's fold cursor, as written after its last page. */
type CursorWrite = { chainId: number; block: bigint; eventId: string | null; at: Date };

/**
 * Writes one page of final events to the fold tables, and the chain's cursor when given, in
 * one statement; re-folding after a crash is a no-op.
 */
async function writeFold(
  trx: Transaction<Database>,
  schema: string,
  page: ChainEvent[],
  overlay: Overlay,
  cursor?: CursorWrite,
) {
  const { refs, registrations, cids, contracts } = foldEvents(page);
  await overlay.affectedCids.add(cids);
  for (const key of contracts) overlay.standingCandidates.add(key);
  const table = (name: string) => sql.id(schema, name);
  const writes: RawBuilder<unknown>[] = [];
  // Rows are keyed by the event id. One array per column (unnest), not one parameter per
  // value: a first fold writes millions of rows, and a statement of 1,000 rows × 7 parameters
  // spent more time in PostgreSQL's parse and bind than in the insert itself.
  if (refs.length > 0) {
    const column = <K extends keyof (typeof refs)[number]>(key: K) => refs.map((ref) => ref[key]);
    writes.push(sql`insert into ${table("pin_ref")} (event_id, cid, chain_id, contract,
        block_number, block_timestamp, transaction_hash)
      select * from unnest(${column("event_id")}::text[], ${column("cid")}::text[],
        ${column("chain_id")}::int8[], ${column("contract")}::text[],
        ${column("block_number")}::int8[], ${column("block_timestamp")}::int8[],
        ${column("transaction_hash")}::text[])
      on conflict (event_id) do nothing`);
  }
  if (registrations.length > 0) {
    const column = <K extends keyof (typeof registrations)[number]>(key: K) =>
      registrations.map((row) => row[key]);
    writes.push(sql`insert into ${table("registration_event")} (event_id, chain_id, contract,
        action, block_number, block_timestamp, transaction_hash)
      select * from unnest(${column("event_id")}::text[], ${column("chain_id")}::int8[],
        ${column("contract")}::text[], ${column("action")}::text[],
        ${column("block_number")}::int8[], ${column("block_timestamp")}::int8[],
        ${column("transaction_hash")}::text[])
      on conflict (event_id) do nothing`);
  }
  if (cursor) writes.push(cursorUpsert(schema, cursor));
  await inOneStatement(trx, writes);
}

function cursorUpsert(schema: string, cursor: CursorWrite): RawBuilder<unknown> {
  return sql`insert into ${sql.id(schema, "desired_cursor")}
      (chain_id, folded_block, folded_event_id, updated_at)
    values (${cursor.chainId}, ${cursor.block}, ${cursor.eventId}, ${cursor.at})
    on conflict (chain_id) do update set folded_block = excluded.folded_block,
      folded_event_id = excluded.folded_event_id, updated_at = excluded.updated_at`;
}

/**
 * Runs the writes as one statement, all but the last as data-modifying CTEs: one round trip.
 * They touch different tables, so none needs to see another's rows.
 */
async function inOneStatement(trx: Transaction<Database>, writes: RawBuilder<unknown>[]) {
  const last = writes.at(-1);
  if (last === undefined) return;
  const ctes = writes.slice(0, -1).map((write, i) => sql`${sql.raw(`write_${i}`)} as (${write})`);
  await (ctes.length === 0 ? last : sql`with ${sql.join(ctes)} ${last}`).execute(trx);
}

/**
 * 3: adds to the overlay's affected CIDs what else may have changed: the API's queues, every
 * CID of a contract whose standing moved, answers that used the previous tail and answers
 * with a time-based change due.
 */
async function collectAffected(
  db: Kysely<Database>,
  overlay: Overlay,
  start: StepStart,
  timelinesFor: (keys: Iterable<string>) => Promise<void>,
  timelines: Map<string, RegistrationAction[]>,
  finalizedBlockOf: (chainId: number) => bigint,
  now: Date,
): Promise<void> {
  const { affectedCids, standingCandidates } = overlay;
  await affectedCids.add(start.dirtyCids);
  const affectedContracts = new Set<string>();
  for (const key of start.dirtyContracts) {
    affectedContracts.add(key);
    standingCandidates.add(key);
  }
  for (const key of start.provisionalContracts) standingCandidates.add(key);
  await timelinesFor(standingCandidates);
  for (const key of await updateStandings(db, [...standingCandidates], timelines, finalizedBlockOf))
    affectedContracts.add(key);
  for (const key of affectedContracts) {
    for (let after: string | null = null; ; ) {
      const page = await cidsOfContractPage(db, key, after, CONTRACT_PAGE);
      await affectedCids.add(page);
      if (page.length < CONTRACT_PAGE) break;
      after = page[page.length - 1] as string;
    }
  }
  const tailOfMoved: string[] = [];
  for (const [cid, refs] of overlay.tailRefs) {
    if (refs.some((ref) => affectedContracts.has(contractKey(ref.chainId, ref.contract))))
      tailOfMoved.push(cid);
  }
  await affectedCids.add(tailOfMoved);
  if (start.dueCids !== null) {
    await affectedCids.add(start.dueCids);
    return;
  }
  // More due than a step holds in memory: select them again where they lie (once spilled,
  // in the database itself). A union, each arm served by its partial index.
  await affectedCids.addSelect(
    db
      .selectFrom("desired_cid")
      .select("cid")
      .where("uses_tail", "=", true)
      .unionAll(db.selectFrom("desired_cid").select("cid").where("next_change_at", "<=", now)),
  );
}

/**
 * Recomputes the standing of each candidate contract and stores those that changed; returns
 * the contracts whose standing moved (all their CIDs must be re-evaluated).
 */
async function updateStandings(
  db: Kysely<Database>,
  keys: string[],
  timelines: Map<string, RegistrationAction[]>,
  finalizedBlockOf: (chainId: number) => bigint,
): Promise<string[]> {
  if (keys.length === 0) return [];
  const ids = keys.map(parseContractKey);
  const stored = new Map(
    (
      await db
        .selectFrom("contract_standing")
        .selectAll()
        .where(
          sql<boolean>`(chain_id, contract) in (select * from unnest(${sql.val(ids.map((id) => String(id.chainId)))}::bigint[], ${sql.val(ids.map((id) => id.contract))}::text[]))`,
        )
        .execute()
    ).map((row) => [
      contractKey(Number(row.chain_id), row.contract),
      { standingId: row.standing_id, standingFinal: row.standing_final },
    ]),
  );
  const moved: string[] = [];
  const rows = [];
  for (const { chainId, contract } of ids) {
    const key = contractKey(chainId, contract);
    const decided = decideStanding(
      timelines.get(key) ?? [],
      finalizedBlockOf(chainId),
      stored.get(key),
    );
    if (decided.moved) moved.push(key);
    if (decided.write) {
      rows.push({
        chain_id: chainId,
        contract,
        standing_id: decided.write.standingId,
        standing_final: decided.write.standingFinal,
      });
    }
  }
  if (rows.length > 0) {
    await db
      .insertInto("contract_standing")
      .values(rows)
      .onConflict((c) =>
        c.columns(["chain_id", "contract"]).doUpdateSet((eb) => ({
          standing_id: eb.ref("excluded.standing_id"),
          standing_final: eb.ref("excluded.standing_final"),
        })),
      )
      .execute();
  }
  return moved;
}

/** 4: evaluates the affected CIDs in pages with the shared rules and writes what changed. */
async function evaluateAffected(
  params: StepParams,
  overlay: Overlay,
  context: EvaluationContext,
  timelinesFor: (keys: Iterable<string>) => Promise<void>,
): Promise<DesiredStepResult> {
  const db = params.trx.withSchema(params.reconcilerSchema);
  const maxChanges = params.maxChanges ?? Number.POSITIVE_INFINITY;
  const changes: DesiredChange[] = [];
  let truncated = false;
  let rowsWritten = overlay.folded;
  for await (const cids of overlay.affectedCids.pages(EVALUATE_PAGE)) {
    params.signal?.throwIfAborted();
    const inPage = new Set(cids);
    const { refs, optimistic, psa, stored } = await loadPageInputs(
      params.trx,
      params.reconcilerSchema,
      cids,
    );
    for (const [cid, extra] of overlay.tailRefs) {
      if (!inPage.has(cid)) continue;
      const list = refs.get(cid);
      if (list) list.push(...extra);
      else refs.set(cid, [...extra]);
    }
    const contracts = new Set<string>();
    for (const list of refs.values())
      for (const ref of list) contracts.add(contractKey(ref.chainId, ref.contract));
    await timelinesFor(contracts);
    const upserts: DesiredRow[] = [];
    const removals: string[] = [];
    for (const cid of cids) {
      const evaluation = evaluateCid(
        refs.get(cid) ?? [],
        optimistic.get(cid),
        context,
        psa.get(cid) ?? 0,
      );
      const decided = decideAnswer(cid, evaluation, stored.get(cid), overlay.tailRefs.has(cid));
      if (decided.remove) removals.push(cid);
      if (decided.upsert) upserts.push(decided.upsert);
      if (!decided.change) continue;
      // Only wants are left out past the cap: a missing want is derived again by the caller's
      // sweep, while a release is never dropped (nothing else would find it as safely).
      if (!decided.change.desired || changes.length < maxChanges) changes.push(decided.change);
      else truncated = true;
    }
    await writeRows(db, upserts, removals, params.now);
    rowsWritten += upserts.length + removals.length;
  }
  return { changes, truncated, rowsWritten };
}

async function writeRows(
  db: Kysely<Database>,
  upserts: DesiredRow[],
  removals: string[],
  now: Date,
): Promise<void> {
  if (removals.length > 0) {
    await db
      .deleteFrom("desired_cid")
      .where("cid", "=", (eb) => eb.fn.any(eb.val(removals)))
      .execute();
  }
  if (upserts.length === 0) return;
  // One array per column (unnest), as in writeFold: a first fold upserts every desired CID.
  const flags = upserts.map((row) => reasonFlags(row.reasons));
  const flag = (key: keyof (typeof flags)[number]) => flags.map((f) => f[key]);
  await db
    .insertInto("desired_cid")
    .columns([
      "cid",
      "reasons",
      "next_change_at",
      "is_confirmed",
      "is_pending",
      "is_optimistic",
      "is_demoted",
      "is_psa",
      "uses_tail",
      "updated_at",
    ])
    .expression(
      sql`select cid, reasons::jsonb, next_change_at, is_confirmed, is_pending, is_optimistic,
          is_demoted, is_psa, uses_tail, ${now}::timestamptz
        from unnest(${upserts.map((row) => row.cid)}::text[], ${upserts.map((row) => row.json)}::text[],
          ${upserts.map((row) => row.nextChangeAt)}::timestamptz[],
          ${flag("is_confirmed")}::bool[], ${flag("is_pending")}::bool[],
          ${flag("is_optimistic")}::bool[], ${flag("is_demoted")}::bool[], ${flag("is_psa")}::bool[],
          ${upserts.map((row) => row.usesTail)}::bool[])
          as t(cid, reasons, next_change_at, is_confirmed, is_pending, is_optimistic, is_demoted,
            is_psa, uses_tail)`,
    )
    .onConflict((c) =>
      c.column("cid").doUpdateSet((eb) => ({
        reasons: eb.ref("excluded.reasons"),
        next_change_at: eb.ref("excluded.next_change_at"),
        is_confirmed: eb.ref("excluded.is_confirmed"),
        is_pending: eb.ref("excluded.is_pending"),
        is_optimistic: eb.ref("excluded.is_optimistic"),
        is_demoted: eb.ref("excluded.is_demoted"),
        is_psa: eb.ref("excluded.is_psa"),
        uses_tail: eb.ref("excluded.uses_tail"),
        updated_at: eb.ref("excluded.updated_at"),
      })),
    )
    .execute();
}
