/**
 * The indexer's read model: the only way the reconciler, the API and the auditors see the
 * indexer's history. Side-effect free at import (Ponder executes every file under src/).
 */
export {
  CHECKPOINT_LENGTH,
  type CheckpointPosition,
  completeBlockOf,
  decodeCheckpoint,
} from "./checkpoint.js";
export { IndexerNotReadyError, MalformedEventRowError } from "./errors.js";
export {
  type CreateReadModelOptions,
  createReadModel,
  type ReadModel,
  toChainEvent,
} from "./read-model.js";
export { foldRegistrations, type StorageContractStatus } from "./registrations.js";
export type { EventTable, IndexerTables } from "./tables.js";
