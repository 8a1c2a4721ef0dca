import {
  DESIRED_REASON_KINDS,
  type DesiredReason,
  type DesiredReasonKind,
} from "@/core/desired/reasons.js";
import type { KeyUsage } from "@/db/keys/keys.js";
import { PIN_STATUSES, type PinStatus } from "@/db/ledger/pin-status.js";
import type { BackendPinState } from "@/db/ledger/reads.js";
import type { PinListPage, PinListQuery } from "@/db/pins.js";
import type {
  CreateOutcome,
  NewPsaRequest,
  PsaListFilter,
  PsaRequestRecord,
  ReplicaRule,
} from "@/db/psa/index.js";
import type { UploadRecord, UploadRecordOutcome } from "@/db/uploads/index.js";
import type { Hex } from "@/src/events.js";
import type { ApiKeyLookup } from "./auth.js";

/**
 * What the API needs from Quasar's database, as one narrow port. The routes depend on this
 * type only; api/store.ts implements it over the reconciler's tables and the indexer's
 * read model, and tests may build it over a fresh Postgres schema. Keeping the port small
 * lets the routes be read (and tested) without knowing any table layout.
 */
export interface ApiStore {
  /**
   * Records an upload, stored but not yet pinned by the API, in ONE transaction: the optimistic
   * pin (cid, size, uploader, expiry) and the ledger row for `backendId`, through the ledger's
   * transitions. Either all rows exist afterwards or none do; a failure throws, and since the
   * API pins only after this, there is nothing to undo. The outcome says what the caller does next.
   */
  recordUpload(upload: UploadRecord): Promise<UploadRecordOutcome>;
  /** After the API's own pin of a recorded upload succeeded: the ledger row becomes pinned, owned. */
  confirmUploadPin(pin: UploadPinRef): Promise<void>;
  /** After the API's own pin failed: the recorded intent goes to the reconciler's queue now. */
  requeueUploadPin(pin: UploadPinRef & { error: string }): Promise<void>;
  /** Why `cid` (normalised CIDv1) is desired; empty when it is not. */
  reasonsFor(cid: string): Promise<PinReason[]>;
  /** Each backend's ledger row for `cid`, labelled by backend id (never a URL). */
  backendStates(cid: string): Promise<BackendPinState[]>;
  /** A page of CIDs Quasar knows about, filtered, in CID order after `after`. */
  listPins(query: PinListQuery): Promise<PinListPage>;
  /**
   * Appends an off-chain registration of a storage contract (append-only, like a Register).
   * "created" when the contract was not registered off-chain before, "existing" when it was.
   */
  registerContract(registration: OffchainRegistrationInput): Promise<"created" | "existing">;
  /** Every storage contract that counts now, on-chain (read model) and off-chain. */
  listContracts(): Promise<ContractRegistration[]>;
  /** True when the database answers now. Never throws. */
  ping(): Promise<boolean>;
  /** API keys stored in the database (db/keys): the keyring's lookup, and usage for admins. */
  apiKeys: ApiKeyLookup & { list(): Promise<KeyUsage[]> };
  /** The Pinning Service API's requests (db/psa), each scoped to one key. */
  psa: PsaPort;
}

/** The Pinning Service API's requests, as the routes use them (db/psa holds the rules). */
export interface PsaPort {
  /** Records (or, with `replaces`, atomically replaces) a request; refusals write nothing. */
  create(rule: ReplicaRule, input: NewPsaRequest): Promise<CreateOutcome>;
  /** A key's request; undefined for an unknown id or another key's request. */
  get(rule: ReplicaRule, keyId: string, requestid: string): Promise<PsaRequestRecord | undefined>;
  /** A page newest first, and the count of every match. */
  list(
    rule: ReplicaRule,
    filter: PsaListFilter,
  ): Promise<{ count: number; results: PsaRequestRecord[] }>;
  /** Deletes a key's request; false when the key holds none with that id. */
  remove(keyId: string, requestid: string): Promise<boolean>;
}

export type { KeyUsage } from "@/db/keys/keys.js";
export type {
  CreateOutcome,
  NameMatch,
  NewPsaRequest,
  PsaListFilter,
  PsaRequestRecord,
  PsaStatus,
  ReplicaRule,
} from "@/db/psa/index.js";

/** An upload as recorded, and what recording it decided: the rules live in db/uploads. */
export {
  UPLOAD_RECORD_OUTCOMES,
  type UploadRecord,
  type UploadRecordOutcome,
} from "@/db/uploads/index.js";

export type UploadPinRef = { cid: string; backendId: string; now: Date };

/** One reason a CID is desired, exactly as the desired store derives it (core/desired). */
export type PinReason = DesiredReason;
export const PIN_REASON_KINDS = DESIRED_REASON_KINDS;
export type PinReasonKind = DesiredReasonKind;

/** The statuses of a (backend, cid) ledger row: the reconciler's one status enum. */
export const LEDGER_STATUSES = PIN_STATUSES;
export type LedgerStatus = PinStatus;

/** A backend's ledger row for a CID, and a page of pins: shaped by db/ledger and db/pins. */
export type { BackendPinState } from "@/db/ledger/reads.js";
export type { PinListPage, PinListQuery } from "@/db/pins.js";

export type OffchainRegistrationInput = {
  chainId: number;
  /** Lowercase address. */
  contract: Hex;
  /** Who registered it: the admin token's id, never the token. */
  actor: string;
  now: Date;
};

/** A storage contract that counts, and where its registration came from. */
export type ContractRegistration = {
  chainId: number;
  contract: Hex;
  source: "chain" | "offchain";
  /** chain: the block and Ponder event id of the Register that holds now. */
  blockNumber?: bigint;
  eventId?: string;
  /** offchain: who and when. */
  registeredBy?: string;
  registeredAt?: Date;
};
