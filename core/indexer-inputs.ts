/**
 * What the indexer (`ponder start`) reads from its root, copied there by `quasar start` and
 * the test harness. Ponder's build id hashes only part of it (docs/operations.md): the
 * config's contracts and ordering, `ponder.schema.ts`, and every file under `src/` but
 * tests. `core/config/` is executed (ponder.config.ts reads settings through it) but not
 * hashed, which is why the indexer's own code never lives there.
 *
 * Copied, not linked: vite resolves links to real paths, and `ponder:schema` must be the very
 * module the build loaded (Ponder finds a table's metadata by object identity). node_modules
 * is linked, so there is one copy of ponder.
 */
export const INDEXER_ROOT_ENTRIES = [
  "ponder.config.ts",
  "ponder.schema.ts",
  "src",
  "abis",
  "core/config",
  "package.json",
  "tsconfig.json",
] as const;
