import { type Kysely, sql, type Transaction } from "kysely";
import {
  type DesiredReason,
  type DesiredReasonJson,
  reasonFromJson,
} from "@/core/desired/reasons.js";
import { applyChanges, type LedgerChange, type LedgerTables } from "@/db/ledger/ledger.js";
import { relaxCommit } from "@/db/ledger/queue.js";
import type { ReadModel } from "@/db/read-model/index.js";
import { listOffchainRegistrations, recordOffchainRegistration } from "@/db/registrations.js";
import { optimisticExpiry } from "@/db/uploads.js";
import { normalizeCid } from "@/src/cid.js";
import { createBatcher } from "./batcher.js";
import {
  type ApiStore,
  type BackendPinState,
  type ContractRegistration,
  LEDGER_STATUSES,
  type LedgerStatus,
  type PinListQuery,
  type UploadRecord,
  type UploadRecordOutcome,
} from "./ports.js";

/**
 * The API's database port over the reconciler's tables (db/migrations) and the
 * indexer's read model. Writes are the API's only two: an upload (optimistic_pin + the
 * ledger's ownership row + the desired set's dirty queue, one transaction) and an off-chain
 * registration (append-only row + dirty queue, one transaction). Reads never lock.
 */
export type CreateApiStoreParams<Tables> = {
  /** Any kysely database on Quasar's Postgres; the caller owns it. */
  db: Kysely<Tables>;
  /** QUASAR_RECONCILER_SCHEMA, migrated to the latest version. */
  reconcilerSchema: string;
  /** On-chain registrations come from here; without it only off-chain ones are listed. */
  readModel?: ReadModel;
  /** QUASAR_PIN_TTL: how long an upload stays desired without a confirming PinHash. */
  ttlMs: number;
};

/**
 * Concurrent uploads are recorded together (group commit): one WAL flush per batch instead
 * of one per upload. A lone upload is written at once; batches form only under load.
 */
const UPLOAD_BATCH = 32;
/** Transactions writing uploads at once; below the API's pool of 10 connections. */
const UPLOAD_WRITERS = 3;
/** The reconcile_log reason of an upload's ownership row (recordOwnedPin's default). */
const RECORD_OWNED_REASON = "uploaded and pinned through the API";
/**
 * How long a new upload's pin intent waits before the reconciler may take it: the API pins it
 * itself right after recording, so the engine only acts if the API died in between.
 */
export const UPLOAD_PIN_GRACE_MS = 5 * 60_000;

type PendingUpload = { upload: UploadRecord; outcome?: UploadRecordOutcome };
type LedgerRowRef = { status: string; owned: boolean };

/** The ledger event of one upload, from the backend's answer and the ledger's current row. */
function decideUpload(
  upload: UploadRecord,
  row: LedgerRowRef | undefined,
): { outcome: UploadRecordOutcome; change?: LedgerChange } {
  const ref = { backendId: upload.backendId, cid: upload.cid };
  if (row?.status === "pinning") {
    // The reconciler's pin is in flight: its outcome (pin_ok, owned; or adopt) decides.
    return upload.pinnedOnBackend ? { outcome: "in_flight" } : { outcome: "pin", change: intent() };
  }
  const ours = row?.owned === true && row.status !== "unpinned";
  if (upload.pinnedOnBackend && ours) {
    return {
      outcome: "owned",
      change: {
        ...ref,
        event: "record_owned",
        set: { owned: true },
        log: {
          decision: "record_owned",
          reason: "uploaded again; already pinned by Quasar",
          outcome: "ok",
        },
      },
    };
  }
  if (upload.pinnedOnBackend) {
    return {
      outcome: "adopted",
      change: {
        ...ref,
        event: "adopt",
        set: { owned: false, attempts: 0, last_error: null },
        log: {
          decision: "adopt",
          reason: "uploaded through the API, already pinned on the backend, not by Quasar",
          outcome: "ok",
        },
      },
    };
  }
  return { outcome: "pin", change: intent() };

  function intent(): LedgerChange {
    return {
      ...ref,
      event: "want",
      set: {
        owned: true,
        next_attempt_at: new Date(upload.now.getTime() + UPLOAD_PIN_GRACE_MS),
      },
      log: {
        decision: "queue",
        reason: "uploaded through the API: the API pins it",
        outcome: "started",
      },
    };
  }
}

type ReasonRow = { cid: string; reasons: DesiredReasonJson[] };
type LedgerRowOut = {
  backend_id: string;
  cid: string;
  status: string;
  attempts: number;
  last_error: string | null;
  updated_at: Date;
};

export function createApiStore<Tables>(params: CreateApiStoreParams<Tables>): ApiStore {
  const db = params.db as unknown as Kysely<LedgerTables>;
  const schema = params.reconcilerSchema;
  const table = (name: string) => sql.table(`${schema}.${name}`);

  /** Live optimistic expiry per CID, straight from the uploads (the desired set may lag a step). */
  const optimisticUntil = async (cids: readonly string[], now: Date) => {
    if (cids.length === 0) return new Map<string, Date>();
    const result = await sql<{ cid: string; until: Date }>`
      select cid, max(expires_at) as until from ${table("optimistic_pin")}
      where cid = any(${[...cids]}::text[]) and expires_at > ${now}
      group by cid`.execute(db);
    return new Map(result.rows.map((row) => [row.cid, new Date(row.until)]));
  };

  const reasonsOf = async (cids: readonly string[]) => {
    const now = new Date();
    const [stored, optimistic] = await Promise.all([
      cids.length === 0
        ? { rows: [] as ReasonRow[] }
        : sql<ReasonRow>`select cid, reasons from ${table("desired_cid")} where cid = any(${[...cids]}::text[])`.execute(
            db,
          ),
      optimisticUntil(cids, now),
    ]);
    const out = new Map<string, DesiredReason[]>();
    for (const row of stored.rows) {
      // Time-bound reasons that ran out since the last step no longer hold.
      const reasons = row.reasons
        .map(reasonFromJson)
        .filter((r) => r.kind !== "optimistic" && !(r.kind === "demoted" && r.until <= now));
      out.set(row.cid, reasons);
    }
    for (const [cid, until] of optimistic) {
      out.set(cid, [...(out.get(cid) ?? []), { kind: "optimistic", expiresAt: until }]);
    }
    return out;
  };

  const ledgerOf = async (cids: readonly string[]) => {
    const out = new Map<string, BackendPinState[]>();
    if (cids.length === 0) return out;
    const result = await sql<LedgerRowOut>`
      select backend_id, cid, status, attempts, last_error, updated_at from ${table("pin_ledger")}
      where cid = any(${[...cids]}::text[]) order by backend_id`.execute(db);
    for (const row of result.rows) {
      const list = out.get(row.cid) ?? [];
      list.push({
        backendId: row.backend_id,
        status: (LEDGER_STATUSES as readonly string[]).includes(row.status)
          ? (row.status as LedgerStatus)
          : "failed",
        attempts: row.attempts,
        lastError: row.last_error,
        updatedAt: new Date(row.updated_at),
      });
      out.set(row.cid, list);
    }
    return out;
  };

  /**
   * Records uploads in ONE transaction: for each, the optimistic pin (plus the desired store's
   * dirty-queue entry, as recordOptimisticPin writes them) and the ledger's row for the
   * uploading backend, changed only through the ledger's state machine (applyChanges):
   * - the backend already holds a pin and the ledger does not own it: `adopt`, owned=false
   *   (a foreign pin: the engine never unpins it, and releases it when the upload expires);
   * - the ledger owns it and the pin is there: `record_owned` (also cancels a queued unpin);
   * - the reconciler is pinning it right now (status pinning): no ledger change;
   * - no pin yet: `want` with owned=true, the intent to pin, before the API pins. Its first
   *   attempt waits UPLOAD_PIN_GRACE_MS, so the engine does not pin alongside the API, yet
   *   takes the pin over if the API dies before it confirms.
   * Either all rows exist afterwards or none do; the outcomes are set only after the commit.
   */
  async function writeUploads(items: readonly PendingUpload[]): Promise<void> {
    const rows = items.map(({ upload }) => ({ ...upload, cid: normalizeCid(upload.cid) }));
    const outcomes = await db.transaction().execute(async (trx) => {
      await sql`
        with input as (
          select * from unnest(
            ${rows.map((r) => r.cid)}::text[],
            ${rows.map((r) => r.now)}::timestamptz[],
            ${rows.map((r) => optimisticExpiry(r.now, params.ttlMs))}::timestamptz[],
            ${rows.map((r) => String(r.size))}::int8[],
            ${rows.map((r) => r.uploader)}::text[],
            ${rows.map((r) => r.backendId)}::text[]
          ) as t(cid, created_at, expires_at, size, uploader, backend_id)
        ),
        optimistic as (
          insert into ${table("optimistic_pin")} (cid, created_at, expires_at, size, uploader, backend_id)
          select cid, created_at, expires_at, size, uploader, backend_id from input
        )
        insert into ${table("desired_dirty_cid")} (cid) select distinct cid from input
        on conflict do nothing`.execute(trx);
      const scoped = trx.withSchema(schema) as unknown as Transaction<LedgerTables>;
      // Only an upload the backend already holds pinned depends on the ledger's row (adopt or
      // ours); read (and lock) those rows. Every other upload records the same intent whatever
      // the row says. applyChanges locks again and re-applies an event if a concurrent
      // writer created the row meanwhile.
      const probed = rows.filter((row) => row.pinnedOnBackend);
      const current =
        probed.length === 0
          ? []
          : await scoped
              .selectFrom("pin_ledger")
              .select(["backend_id", "cid", "status", "owned"])
              .where(
                "backend_id",
                "=",
                sql<string>`any(${[...new Set(probed.map((r) => r.backendId))]}::text[])`,
              )
              .where(
                "cid",
                "=",
                sql<string>`any(${[...new Set(probed.map((r) => r.cid))]}::text[])`,
              )
              .orderBy("backend_id")
              .orderBy("cid")
              .forUpdate()
              .execute();
      const byKey = new Map(current.map((row) => [`${row.backend_id}\u0000${row.cid}`, row]));
      const outcomes: UploadRecordOutcome[] = [];
      const changes: LedgerChange[] = [];
      for (const row of rows) {
        const existing = byKey.get(`${row.backendId}\u0000${row.cid}`);
        const decided = decideUpload(row, existing);
        outcomes.push(decided.outcome);
        if (decided.change) changes.push(decided.change);
      }
      if (changes.length === 0) return outcomes;
      const results = await applyChanges(scoped, changes, {
        now: rows[0]?.now ?? new Date(),
        pinDeadlineMs: rows[0]?.pinDeadlineMs ?? 0,
      });
      // Any refusal fails the transaction; the batcher then records each upload on its own.
      const refused = results.findIndex((result) => !result.applied);
      if (refused !== -1) {
        const change = changes[refused] as LedgerChange;
        throw new Error(`the ledger refused ${change.event} for an upload of ${change.cid}`);
      }
      return outcomes;
    });
    items.forEach((item, i) => {
      item.outcome = outcomes[i];
    });
  }

  /** Applies one ledger event per item, in one transaction (the API's follow-ups of its pin). */
  async function writeFollowUps(changes: readonly LedgerChange[]): Promise<void> {
    await db.transaction().execute(async (trx) => {
      const scoped = trx.withSchema(schema) as unknown as Transaction<LedgerTables>;
      // No WAL flush wait, as for the engine's own outcomes: the intent before the pin was
      // committed durably, so a confirmation lost in a Postgres crash only lets the engine
      // pin again (idempotent) after the grace period.
      await relaxCommit(scoped);
      // No deadline is read: neither event starts a new pin request (the row is already wanted).
      const results = await applyChanges(scoped, changes, { now: new Date(), pinDeadlineMs: 0 });
      const refused = results.findIndex((result) => !result.applied);
      if (refused !== -1) {
        const change = changes[refused] as LedgerChange;
        throw new Error(`the ledger refused ${change.event} for ${change.cid}`);
      }
    });
  }
  const followUp = createBatcher(writeFollowUps, {
    maxBatch: UPLOAD_BATCH,
    maxWriters: UPLOAD_WRITERS,
  });
  const recordBatch = createBatcher(writeUploads, {
    maxBatch: UPLOAD_BATCH,
    maxWriters: UPLOAD_WRITERS,
  });

  return {
    async recordUpload(upload) {
      const item: PendingUpload = { upload };
      await recordBatch(item);
      if (!item.outcome) throw new Error("the upload batch committed without an outcome");
      return item.outcome;
    },

    confirmUploadPin(pin) {
      return followUp({
        backendId: pin.backendId,
        cid: normalizeCid(pin.cid),
        event: "record_owned",
        set: { owned: true },
        log: { decision: "record_owned", reason: RECORD_OWNED_REASON, outcome: "ok" },
      });
    },

    requeueUploadPin(pin) {
      return followUp({
        backendId: pin.backendId,
        cid: normalizeCid(pin.cid),
        // Still wanted: `want` keeps the row queued; the engine takes it at once.
        event: "want",
        set: { next_attempt_at: pin.now, last_error: pin.error },
        log: {
          decision: "pin",
          reason: "the API's pin of an upload failed: left to the reconciler",
          outcome: "error",
          error: pin.error,
        },
      });
    },

    async reasonsFor(cid) {
      return (await reasonsOf([cid])).get(cid) ?? [];
    },

    async backendStates(cid) {
      return (await ledgerOf([cid])).get(cid) ?? [];
    },

    async listPins(query: PinListQuery) {
      const reasonColumn = query.reason ? sql.ref(`d.is_${query.reason}`) : undefined;
      const result = await sql<{ cid: string }>`
        select c.cid from (
          select cid collate "C" as cid from ${table("desired_cid")}
          union
          select cid collate "C" as cid from ${table("pin_ledger")}
        ) c
        where (${query.after ?? null}::text is null or c.cid > ${query.after ?? null}::text collate "C")
        ${
          query.status || query.backend
            ? sql`and exists (select 1 from ${table("pin_ledger")} l where l.cid = c.cid
                ${query.status ? sql`and l.status = ${query.status}` : sql``}
                ${query.backend ? sql`and l.backend_id = ${query.backend}` : sql``})`
            : sql``
        }
        ${
          reasonColumn
            ? sql`and exists (select 1 from ${table("desired_cid")} d where d.cid = c.cid and ${reasonColumn})`
            : sql``
        }
        order by c.cid limit ${query.limit + 1}`.execute(db);
      const page = result.rows.slice(0, query.limit).map((row) => row.cid);
      const [reasons, ledger] = await Promise.all([reasonsOf(page), ledgerOf(page)]);
      const items = page.map((cid) => ({
        cid,
        reasons: reasons.get(cid) ?? [],
        backends: ledger.get(cid) ?? [],
      }));
      const last = page[page.length - 1];
      return result.rows.length > query.limit && last ? { items, nextCursor: last } : { items };
    },

    async registerContract(input) {
      return db.transaction().execute(async (trx) => {
        // Serialise registrations of one contract so "created" is answered once.
        await sql`select pg_advisory_xact_lock(hashtext(${`${schema}:${input.chainId}:${input.contract}`}))`.execute(
          trx,
        );
        const history = await listOffchainRegistrations<LedgerTables>(trx, {
          schema,
          chainId: input.chainId,
          contract: input.contract,
        });
        if (history.at(-1)?.action === "register") return "existing" as const;
        await recordOffchainRegistration(trx, {
          schema,
          chainId: input.chainId,
          contract: input.contract,
          action: "register",
          actor: input.actor,
          now: input.now,
        });
        return "created" as const;
      });
    },

    async listContracts() {
      // The latest off-chain action per contract decides whether it counts.
      const latest = new Map<
        string,
        Awaited<ReturnType<typeof listOffchainRegistrations>>[number]
      >();
      for (const row of await listOffchainRegistrations(db, { schema })) {
        latest.set(`${row.chainId}:${row.contract}`, row);
      }
      const list: ContractRegistration[] = [...latest.values()]
        .filter((row) => row.action === "register")
        .map((row) => ({
          chainId: row.chainId,
          contract: row.contract,
          source: "offchain",
          registeredBy: row.actor,
          registeredAt: row.createdAt,
        }));
      if (params.readModel) {
        let onchain: Awaited<ReturnType<ReadModel["storageContracts"]>> = [];
        try {
          onchain = await params.readModel.storageContracts();
        } catch {
          // The indexer has not created its tables yet: no on-chain registrations so far.
        }
        for (const status of onchain) {
          if (!status.registered) continue;
          list.push({
            chainId: status.chainId,
            contract: status.contract,
            source: "chain",
            blockNumber: status.sinceBlock,
            eventId: status.sinceEventId,
          });
        }
      }
      return list.sort((a, b) =>
        a.chainId !== b.chainId
          ? a.chainId - b.chainId
          : a.contract < b.contract
            ? -1
            : a.contract > b.contract
              ? 1
              : 0,
      );
    },

    async ping() {
      try {
        await sql`select 1`.execute(db);
        return true;
      } catch {
        return false;
      }
    },
  };
}
