import { type Kysely, sql, type Transaction } from "kysely";
import type { Logger } from "pino";
import { type EvaluationContext, evaluateCid, type PinRef } from "@/core/desired/evaluate.js";
import {
  type DesiredReason,
  type DesiredReasonJson,
  reasonFromJson,
  reasonToJson,
} from "@/core/desired/reasons.js";
import {
  chainAction,
  contractKey,
  insertAction,
  isFinalAction,
  type RegistrationAction,
  standingAction,
} from "@/core/desired/timeline.js";
import type { ChainEvent, ChainProgress, Hex } from "@/src/events.js";
import { createReadModel, type IndexerTables, toChainEvent } from "../read-model/index.js";
import { latestOptimisticExpiries } from "../uploads.js";
import { cidsOfContracts, loadRefs, loadTimelines, parseContractKey } from "./persisted.js";
import type { DesiredTables } from "./tables.js";
import type { DesiredChange } from "./types.js";

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
 * Cost follows the change (plus the tail), never the history.
 */
export type StepParams = {
  trx: Transaction<DesiredTables>;
  indexerSchema: string;
  reconcilerSchema: string;
  ttlMs: number;
  now: Date;
  signal?: AbortSignal;
  logger?: Logger;
};

/** Rows folded or evaluated per query: bounds memory and statement size. */
const FOLD_PAGE = 5_000;
const EVALUATE_PAGE = 1_000;
/** Events folded in one step above which the fold tables are analysed before evaluating. */
const ANALYZE_AFTER_FOLDED = 50_000;

export async function runStep(params: StepParams): Promise<DesiredChange[]> {
  const { trx, now, signal } = params;
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
  const events = (trx as unknown as Kysely<IndexerTables>).withSchema(params.indexerSchema);
  // Steps of one reconciler schema run one at a time, whichever process calls them.
  // Every query below is an index lookup. Tables this very transaction has grown (a first
  // fold of a long history) have no statistics yet, and the planner then estimates
  // `cid = any(<1000 values>)` as the whole table and scans it once per page: seq scans off.
  // That inflates the cost of the seq scans left on tiny tables past JIT's threshold, and
  // compiling them would cost hundreds of ms per step: JIT off (no step query needs it).
  // One statement, one round trip.
  await sql`select pg_advisory_xact_lock(hashtext(${`${params.reconcilerSchema}.desired`})),
    set_config('enable_seqscan', 'off', true), set_config('jit', 'off', true)`.execute(trx);

  const progress = await createReadModel<DesiredTables>({
    db: trx,
    schema: params.indexerSchema,
  }).progress();
  const finalized = new Map(progress.map((chain) => [chain.chainId, chain.finalizedBlock]));
  const finalizedBlockOf = (chainId: number) => finalized.get(chainId) ?? -1n;

  const affectedCids = new Set<string>();
  const standingCandidates = new Set<string>();
  const tailRefs = new Map<string, PinRef[]>();
  const tailActions = new Map<string, RegistrationAction[]>();
  let folded = 0;
  let tailSize = 0;

  const cursors = new Map(
    (await db.selectFrom("desired_cursor").selectAll().execute()).map((row) => [
      Number(row.chain_id),
      { block: BigInt(row.folded_block), eventId: row.folded_event_id },
    ]),
  );

  for (const chain of progress) {
    const limit = foldLimit(chain);
    const cursor = cursors.get(chain.chainId) ?? { block: -1n, eventId: null };
    // 1. Fold the newly final events of this chain.
    if (limit > cursor.block) {
      let lastId: string | null = null;
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
        await foldPage(db, page, affectedCids, standingCandidates);
        folded += page.length;
        lastId = (page[page.length - 1] as ChainEvent).id;
        if (page.length < FOLD_PAGE) break;
      }
      await db
        .insertInto("desired_cursor")
        .values({
          chain_id: chain.chainId,
          folded_block: limit,
          folded_event_id: lastId ?? cursor.eventId,
          updated_at: now,
        })
        .onConflict((c) =>
          c.column("chain_id").doUpdateSet({
            folded_block: limit,
            folded_event_id: lastId ?? cursor.eventId,
            updated_at: now,
          }),
        )
        .execute();
    }

    // 2. The unfinalized tail, recomputed every step: reorgs simply change what it holds.
    const tail = (
      await events
        .selectFrom("event")
        .selectAll()
        .where("chain_id", "=", chain.chainId)
        .where("block_number", ">", limit > cursor.block ? limit : cursor.block)
        .orderBy("id")
        .execute()
    ).map(toChainEvent);
    tailSize += tail.length;
    for (const event of tail) {
      if (event.kind === "pin_hash") {
        if (event.cid === null) continue;
        const ref = toRef(event, event.cid);
        const list = tailRefs.get(event.cid);
        if (list) list.push(ref);
        else tailRefs.set(event.cid, [ref]);
        affectedCids.add(event.cid);
      } else if (event.subject !== null) {
        const action = chainAction({ ...event, subject: event.subject, kind: event.kind });
        const key = contractKey(action.chainId, action.contract);
        const list = tailActions.get(key);
        if (list) list.push(action);
        else tailActions.set(key, [action]);
        standingCandidates.add(key);
      }
    }
  }

  // A large fold (a first start on a long history) grew pin_ref inside this transaction;
  // give the planner its real size for the evaluation below (ANALYZE sees our own rows).
  if (folded >= ANALYZE_AFTER_FOLDED) {
    await sql`analyze ${sql.id(params.reconcilerSchema, "pin_ref")}, ${sql.id(params.reconcilerSchema, "registration_event")}`.execute(
      trx,
    );
  }
  phase("foldAndTail");
  // 3. What else may have changed.
  const dirtyCids = await db.deleteFrom("desired_dirty_cid").returning("cid").execute();
  for (const row of dirtyCids) affectedCids.add(row.cid);
  const dirtyContracts = await db
    .deleteFrom("desired_dirty_contract")
    .returning(["chain_id", "contract"])
    .execute();
  const affectedContracts = new Set<string>();
  for (const row of dirtyContracts) {
    const key = contractKey(Number(row.chain_id), row.contract);
    affectedContracts.add(key);
    standingCandidates.add(key);
  }
  const provisional = await db
    .selectFrom("contract_standing")
    .select(["chain_id", "contract"])
    .where("standing_final", "=", false)
    .execute();
  for (const row of provisional)
    standingCandidates.add(contractKey(Number(row.chain_id), row.contract));
  const timelineCache = new Map<string, RegistrationAction[]>();
  const timelinesFor = async (keys: Iterable<string>) => {
    const missing = [...keys].filter((key) => !timelineCache.has(key));
    for (const [key, timeline] of await loadTimelines(db, missing)) {
      for (const action of tailActions.get(key) ?? []) insertAction(timeline, action);
      timelineCache.set(key, timeline);
    }
  };
  await timelinesFor(standingCandidates);
  await updateStandings(
    db,
    [...standingCandidates],
    timelineCache,
    finalizedBlockOf,
    affectedContracts,
  );
  for (const cid of await cidsOfContracts(db, [...affectedContracts])) affectedCids.add(cid);
  for (const [cid, refs] of tailRefs) {
    if (refs.some((ref) => affectedContracts.has(contractKey(ref.chainId, ref.contract))))
      affectedCids.add(cid);
  }
  // Answers that used the previous tail (a reorg may have removed what they rest on) and
  // answers with a time-based change due. A union, each arm served by its partial index (an
  // OR would scan the whole set).
  const due = await db
    .selectFrom("desired_cid")
    .select("cid")
    .where("uses_tail", "=", true)
    .unionAll(db.selectFrom("desired_cid").select("cid").where("next_change_at", "<=", now))
    .execute();
  for (const row of due) affectedCids.add(row.cid);

  phase("collect");
  // 4. Evaluate with the shared rules and write what changed.
  const context: EvaluationContext = {
    timelineOf: (chainId: number, contract: Hex) =>
      timelineCache.get(contractKey(chainId, contract)) ?? [],
    finalizedBlockOf,
    now,
    ttlMs: params.ttlMs,
  };
  const changes: DesiredChange[] = [];
  const sorted = [...affectedCids].sort();
  for (let start = 0; start < sorted.length; start += EVALUATE_PAGE) {
    signal?.throwIfAborted();
    const cids = sorted.slice(start, start + EVALUATE_PAGE);
    const refs = await loadRefs(db, cids);
    for (const [cid, extra] of tailRefs) {
      if (!cids.includes(cid)) continue;
      const list = refs.get(cid);
      if (list) list.push(...extra);
      else refs.set(cid, [...extra]);
    }
    const contracts = new Set<string>();
    for (const list of refs.values())
      for (const ref of list) contracts.add(contractKey(ref.chainId, ref.contract));
    await timelinesFor(contracts);
    const optimistic = await latestOptimisticExpiries<DesiredTables>(db, cids);
    const stored = new Map(
      (
        await db
          .selectFrom("desired_cid")
          .select(["cid", "reasons", "uses_tail"])
          .where("cid", "=", (eb) => eb.fn.any(eb.val(cids)))
          .execute()
      ).map((row) => [
        row.cid,
        { json: canonical(row.reasons.map(reasonFromJson)), usesTail: row.uses_tail },
      ]),
    );
    const upserts: Row[] = [];
    const removals: string[] = [];
    for (const cid of cids) {
      const evaluation = evaluateCid(refs.get(cid) ?? [], optimistic.get(cid), context);
      const json = canonical(evaluation.reasons);
      const usesTail = tailRefs.has(cid);
      const before = stored.get(cid);
      if (evaluation.reasons.length === 0) {
        if (before === undefined) continue;
        removals.push(cid);
        changes.push({ cid, desired: false, reasons: [] });
      } else if (before?.json !== json || before.usesTail !== usesTail) {
        upserts.push({
          cid,
          reasons: evaluation.reasons,
          json,
          nextChangeAt: evaluation.nextChangeAt,
          usesTail,
        });
        // Only a different answer is a change; a row that merely left the tail is not.
        if (before?.json !== json)
          changes.push({ cid, desired: true, reasons: evaluation.reasons });
      }
    }
    await writeRows(db, upserts, removals, now);
  }

  phase("evaluate");
  params.logger?.debug(
    {
      phases,
      msg: "desired step",
      folded,
      tail: tailSize,
      evaluated: affectedCids.size,
      changes: changes.length,
      ms: Math.round(performance.now() - started),
    },
    "desired step",
  );
  return changes;
}

/** Highest block of a chain that is both final and fully indexed: what may be folded. */
export function foldLimit(chain: ChainProgress): bigint {
  // biome-ignore lint/complexity/useMathMinMax: Math.min does not take bigint
  return chain.finalizedBlock < chain.indexedBlock ? chain.finalizedBlock : chain.indexedBlock;
}

function toRef(event: ChainEvent, cid: string): PinRef {
  return {
    cid,
    chainId: event.chainId,
    contract: event.contract,
    eventId: event.id,
    blockNumber: event.blockNumber,
    blockTimestamp: event.blockTimestamp,
    transactionHash: event.transactionHash,
  };
}

function canonical(reasons: readonly DesiredReason[]): string {
  return JSON.stringify(reasons.map(reasonToJson));
}

async function foldPage(
  db: Kysely<DesiredTables>,
  page: ChainEvent[],
  affectedCids: Set<string>,
  standingCandidates: Set<string>,
): Promise<void> {
  const refs = [];
  const registrations = [];
  for (const event of page) {
    if (event.kind === "pin_hash") {
      // Invalid CIDs are never desired: nothing to keep.
      if (event.cid === null) continue;
      refs.push({
        event_id: event.id,
        cid: event.cid,
        chain_id: event.chainId,
        contract: event.contract,
        block_number: event.blockNumber,
        block_timestamp: event.blockTimestamp,
        transaction_hash: event.transactionHash,
      });
      affectedCids.add(event.cid);
    } else if (event.subject !== null) {
      registrations.push({
        event_id: event.id,
        chain_id: event.chainId,
        contract: event.subject,
        action: event.kind,
        block_number: event.blockNumber,
        block_timestamp: event.blockTimestamp,
        transaction_hash: event.transactionHash,
      });
      standingCandidates.add(contractKey(event.chainId, event.subject));
    }
  }
  // Re-folding after a crash is a no-op: rows are keyed by the event id.
  for (let start = 0; start < refs.length; start += 1_000) {
    await db
      .insertInto("pin_ref")
      .values(refs.slice(start, start + 1_000))
      .onConflict((c) => c.column("event_id").doNothing())
      .execute();
  }
  if (registrations.length > 0) {
    await db
      .insertInto("registration_event")
      .values(registrations)
      .onConflict((c) => c.column("event_id").doNothing())
      .execute();
  }
}

/**
 * Recomputes the standing action of each candidate contract; a contract whose standing
 * moved (a Register, a final Unregister, one reorged away) has all its CIDs re-evaluated.
 */
async function updateStandings(
  db: Kysely<DesiredTables>,
  keys: string[],
  timelines: Map<string, RegistrationAction[]>,
  finalizedBlockOf: (chainId: number) => bigint,
  affectedContracts: Set<string>,
): Promise<void> {
  if (keys.length === 0) return;
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
    ).map((row) => [contractKey(Number(row.chain_id), row.contract), row]),
  );
  const rows = [];
  for (const { chainId, contract } of ids) {
    const key = contractKey(chainId, contract);
    const standing = standingAction(timelines.get(key) ?? [], finalizedBlockOf(chainId));
    const standingId = standing?.id ?? null;
    const standingFinal =
      standing === undefined || isFinalAction(standing, finalizedBlockOf(chainId));
    const before = stored.get(key);
    if (before?.standing_id === standingId && before.standing_final === standingFinal) continue;
    if ((before?.standing_id ?? null) !== standingId) affectedContracts.add(key);
    rows.push({
      chain_id: chainId,
      contract,
      standing_id: standingId,
      standing_final: standingFinal,
    });
  }
  if (rows.length === 0) return;
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

type Row = {
  cid: string;
  reasons: DesiredReason[];
  json: string;
  nextChangeAt: Date | null;
  usesTail: boolean;
};

async function writeRows(
  db: Kysely<DesiredTables>,
  upserts: Row[],
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
  const has = (reasons: DesiredReason[], kind: DesiredReason["kind"]) =>
    reasons.some((r) => r.kind === kind);
  await db
    .insertInto("desired_cid")
    .values(
      upserts.map((row) => ({
        cid: row.cid,
        reasons: row.json,
        next_change_at: row.nextChangeAt,
        is_confirmed: has(row.reasons, "confirmed"),
        is_pending: has(row.reasons, "pending"),
        is_optimistic: has(row.reasons, "optimistic"),
        is_demoted: has(row.reasons, "demoted"),
        uses_tail: row.usesTail,
        updated_at: now,
      })),
    )
    .onConflict((c) =>
      c.column("cid").doUpdateSet((eb) => ({
        reasons: eb.ref("excluded.reasons"),
        next_change_at: eb.ref("excluded.next_change_at"),
        is_confirmed: eb.ref("excluded.is_confirmed"),
        is_pending: eb.ref("excluded.is_pending"),
        is_optimistic: eb.ref("excluded.is_optimistic"),
        is_demoted: eb.ref("excluded.is_demoted"),
        uses_tail: eb.ref("excluded.uses_tail"),
        updated_at: eb.ref("excluded.updated_at"),
      })),
    )
    .execute();
}

export type { DesiredReasonJson };
