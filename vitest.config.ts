import { fileURLToPath } from "node:url";
import { configDefaults, defineConfig } from "vitest/config";

// The "@/" alias of tsconfig.json, for vite's resolver.
const alias = { "@": fileURLToPath(new URL(".", import.meta.url)) };

export default defineConfig({
  resolve: { alias },
  test: {
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: "forks",
    projects: [
      {
        // Pure logic beside the code it tests: no PostgreSQL, chain or daemon; seconds.
        extends: true,
        test: {
          name: "unit",
          include: ["{src,core,db,backends,reconciler,api,audit,cli,bench,scripts}/**/*.test.ts"],
          pool: "forks",
        },
      },
      {
        // Real parts: PostgreSQL, anvil, Ponder, Kubo, helia, child processes. Files run one or
        // two at a time so the 2-core machine does not thrash.
        extends: true,
        test: {
          name: "integration",
          // Its own group: vitest runs projects with different worker limits one after another.
          sequence: { groupOrder: 1 },
          include: ["test/**/*.test.ts"],
          // The fault suite runs on its own: `npm run test:faults` (vitest.faults.config.ts).
          exclude: [...configDefaults.exclude, "test/faults/**"],
          fileParallelism: true,
          maxWorkers: 2,
          pool: "forks",
        },
      },
    ],
  },
});
