/**
 * The desired-set rules (docs/desired-set.md): one pure derivation shared by the
 * reconciler's incremental store and the auditors. Side-effect free (Ponder executes
 * every file under src/).
 */
export * from "./derive.js";
export * from "./digest.js";
export * from "./evaluate.js";
export * from "./reasons.js";
export * from "./state.js";
export * from "./timeline.js";
