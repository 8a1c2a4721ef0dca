import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The fault suite (issue 9): the whole stack and one fault after another, minutes long, so
// apart from `npm test`. Run by `npm run test:faults` and by .ci/run after the main suite.
const alias = { "@": fileURLToPath(new URL(".", import.meta.url)) };

export default defineConfig({
  resolve: { alias },
  test: {
    name: "faults",
    include: ["test/faults/**/*.test.ts"],
    pool: "forks",
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 300_000,
  },
});
