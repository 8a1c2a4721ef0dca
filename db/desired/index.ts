/**
 * The persisted, incremental desired set: the store (what the reconciler steps), its
 * contract, and the reads other layers share. Import from here, not from the files.
 */
export { countDesired, storedReasons, streamDesiredPages, streamDesiredText } from "./reads.js";
export { createDesiredStore } from "./store.js";
export type {
  CreateDesiredStoreParams,
  DesiredChange,
  DesiredCounts,
  DesiredLag,
  DesiredReason,
  DesiredStepResult,
  DesiredStore,
  DesiredTextPage,
} from "./types.js";
