/** The incremental desired store: its contract (types.ts) and its Postgres implementation. */
export { createDesiredStore } from "./store.js";
export type {
  CreateDesiredStoreParams,
  DesiredChange,
  DesiredCounts,
  DesiredLag,
  DesiredReason,
  DesiredStore,
} from "./types.js";
