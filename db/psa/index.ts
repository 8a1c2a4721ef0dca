/** The Pinning Service API's requests: their one writer, reads and the derived status. */
export { psaRequestCountOf } from "./counts.js";
export {
  type CreateOutcome,
  createPsaCountCache,
  createPsaRequest,
  deletePsaRequest,
  getPsaRequest,
  listPsaRequests,
  NAME_MATCHES,
  type NameMatch,
  type NewPsaRequest,
  type PsaCountCache,
  type PsaListFilter,
  type PsaRequestRecord,
} from "./requests.js";
export {
  derivePsaStatus,
  type LedgerCounts,
  PSA_STATUSES,
  type PsaStatus,
  type ReplicaRule,
} from "./status.js";
