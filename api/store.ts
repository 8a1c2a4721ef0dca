import type { Kysely } from "kysely";
import { pingDatabase } from "@/db/connect.js";
import type { Database } from "@/db/database.js";
import { findApiKey, hasActiveApiKeys, listApiKeys, touchApiKey } from "@/db/keys/keys.js";
import type { LedgerChange } from "@/db/ledger/ledger.js";
import { backendStatesOf } from "@/db/ledger/reads.js";
import { listPins, liveReasonsOf } from "@/db/pins.js";
import {
  createPsaCountCache,
  createPsaRequest,
  deletePsaRequest,
  getPsaRequest,
  listPsaRequests,
} from "@/db/psa/index.js";
import type { ReadModel } from "@/db/read-model/index.js";
import { activeOffchainRegistrations, registerContractOnce } from "@/db/registrations.js";
import {
  applyUploadFollowUps,
  confirmedPinChange,
  failedPinChange,
  recordUploads,
  type UploadRecordOutcome,
} from "@/db/uploads/index.js";
import { normalizeCid } from "@/src/cid.js";
import { createBatcher } from "./batcher.js";
import type { ApiStore, ContractRegistration, UploadRecord } from "./ports.js";

/**
 * The API's database port (api/ports.ts) over the database layer: every query and every
 * rule lives in db/; this file only batches the API's writes. Writes are the API's only
 * two: an upload (db/uploads: optimistic pin + the ledger's row + the desired set's dirty
 * queue, one transaction) and an off-chain registration (db/registrations). Reads never lock.
 */
export type CreateApiStoreParams = {
  /** Quasar's database (connectDatabase); the caller owns it. */
  db: Kysely<Database>;
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
/**
 * Transactions writing uploads at once (for each of the two batchers). One: uploads that
 * arrive while it runs form the next batch, so under load each transaction carries more of
 * them and the API makes fewer round trips. With three, batches averaged 2.4 uploads and an
 * upload waited 50 ms for its record instead of 30 (bench:api, 16 clients, PostgreSQL on the
 * API's core). A batch of 32 commits in a few ms: one writer records thousands of uploads
 * a second, more than a Kubo node takes.
 */
const UPLOAD_WRITERS = 1;

type PendingUpload = { upload: UploadRecord; outcome?: UploadRecordOutcome };

export function createApiStore(params: CreateApiStoreParams): ApiStore {
  const { db } = params;
  const schema = params.reconcilerSchema;

  const recordBatch = createBatcher(
    async (items: readonly PendingUpload[]) => {
      const recorded = await recordUploads(db, {
        schema,
        ttlMs: params.ttlMs,
        uploads: items.map((item) => item.upload),
      });
      // Set only after the commit: a batch that fails is retried item by item.
      items.forEach((item, i) => {
        item.outcome = recorded[i]?.outcome;
      });
    },
    { maxBatch: UPLOAD_BATCH, maxWriters: UPLOAD_WRITERS },
  );
  const followUp = createBatcher(
    (changes: readonly LedgerChange[]) => applyUploadFollowUps(db, schema, changes),
    { maxBatch: UPLOAD_BATCH, maxWriters: UPLOAD_WRITERS },
  );

  // Counts carried from one page of a listing to the next (db/psa: PsaCountCache).
  const pageCounts = createPsaCountCache();

  return {
    async recordUpload(upload) {
      const item: PendingUpload = { upload };
      await recordBatch(item);
      if (!item.outcome) throw new Error("the upload batch committed without an outcome");
      return item.outcome;
    },

    confirmUploadPin(pin) {
      return followUp(confirmedPinChange({ backendId: pin.backendId, cid: normalizeCid(pin.cid) }));
    },

    requeueUploadPin(pin) {
      return followUp(
        failedPinChange({ ...pin, backendId: pin.backendId, cid: normalizeCid(pin.cid) }),
      );
    },

    async reasonsFor(cid) {
      return (await liveReasonsOf(db, schema, [cid], new Date())).get(cid) ?? [];
    },

    async backendStates(cid) {
      return (await backendStatesOf(db, schema, [cid])).get(cid) ?? [];
    },

    listPins: (query) => listPins(db, schema, query),

    registerContract: (input) => registerContractOnce(db, { ...input, schema }),

    async listContracts() {
      const list: ContractRegistration[] = (await activeOffchainRegistrations(db, schema)).map(
        (row) => ({
          chainId: row.chainId,
          contract: row.contract,
          source: "offchain",
          registeredBy: row.actor,
          registeredAt: row.createdAt,
        }),
      );
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

    ping: () => pingDatabase(db),

    apiKeys: {
      find: (digest) => findApiKey(db, schema, digest),
      anyActive: () => hasActiveApiKeys(db, schema),
      touch: (id, now) => touchApiKey(db, schema, id, now),
      list: () => listApiKeys(db, schema),
    },

    psa: {
      create: (rule, input) => createPsaRequest(db, schema, rule, input),
      get: (rule, keyId, requestid) => getPsaRequest(db, schema, rule, keyId, requestid),
      list: (rule, filter) => listPsaRequests(db, schema, rule, filter, pageCounts),
      remove: (keyId, requestid) => deletePsaRequest(db, schema, keyId, requestid),
    },
  };
}
