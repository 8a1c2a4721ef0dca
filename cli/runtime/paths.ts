import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The installed Quasar package (where node_modules, ponder.config.ts and cli/ live). */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/** The `quasar` launcher, to start parts as child processes of the CLI. */
export const QUASAR_BIN = join(PACKAGE_ROOT, "bin", "quasar.js");

/** The native anvil binary (node_modules/.bin/anvil is a shim whose signals do not reach it). */
export function anvilBinary(): string {
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const native = join(
    PACKAGE_ROOT,
    "node_modules",
    "@foundry-rs",
    `anvil-${process.platform}-${arch}`,
    "bin",
    "anvil",
  );
  return existsSync(native) ? native : join(PACKAGE_ROOT, "node_modules", ".bin", "anvil");
}

export const PONDER_BIN = join(
  PACKAGE_ROOT,
  "node_modules",
  "ponder",
  "dist",
  "esm",
  "bin",
  "ponder.js",
);
