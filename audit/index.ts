/**
 * The auditors' shared code: replays of the desired set from Quasar's database or straight
 * from a chain, their output and digest. Side-effect free (Ponder executes src/).
 */
export {
  PIN_HASH_TOPIC,
  QUASAR_EVENTS_ABI,
  REGISTER_TOPIC,
  readChainEvents,
  UNREGISTER_TOPIC,
} from "./chain-logs.js";
export { type DatabaseHistory, readDatabaseHistory } from "./db-history.js";
export { ReplayInputError, ReplayRpcError } from "./errors.js";
export { eventIdOf, type LogPosition } from "./event-id.js";
export { type Finality, ponderFinalityDepth, resolveFinality } from "./finality.js";
export {
  AUDIT_FORMATS,
  type AuditFormat,
  CSV_HEADER,
  csvField,
  digestLine,
  entriesToCsv,
  replayToJson,
} from "./output.js";
export { type ReplayInput, type ReplayResult, replayDesiredSet } from "./replay.js";
