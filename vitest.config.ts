import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: [
      "src/**/*.test.ts",
      "reconciler/**/*.test.ts",
      "test/**/*.test.ts",
      "bench/**/*.test.ts",
    ],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    // Suites start real anvil, Postgres schemas, Ponder and IPFS daemons: keep the 2-core
    // machine from thrashing by running files one or two at a time.
    fileParallelism: true,
    maxWorkers: 2,
    pool: "forks",
  },
});
