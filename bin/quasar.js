#!/usr/bin/env node
// The `quasar` command: runs cli/main.ts through tsx on the Node that runs this file.
// Quasar needs Node ≥ 22 (Ponder 0.17); when an older node starts this launcher and the
// project's own Node (the `node` devDependency) is installed, re-run on that one instead.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const major = Number(process.versions.node.split(".")[0]);

if (major < 22) {
  const projectNode = join(root, "node_modules", "node", "bin", "node");
  if (!existsSync(projectNode)) {
    process.stderr.write(`quasar needs Node 22 or later; this is ${process.version}\n`);
    process.exit(1);
  }
  const child = spawn(projectNode, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  // A terminal's Ctrl-C reaches both of us; a signal sent to this process alone is passed on.
  // Either way this process waits for the child's graceful stop and exits as it did.
  for (const name of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.on(name, () => child.kill(name));
  }
  const [code, signal] = await new Promise((resolve) => {
    child.on("exit", (...args) => resolve(args));
  });
  process.exit(code ?? (signal ? 130 : 1));
}

// The "@/" import alias lives in tsconfig.json; tsx finds it from any working directory
// (and so do the parts this process starts, which inherit the variable).
process.env.TSX_TSCONFIG_PATH ??= join(root, "tsconfig.json");
const { register } = await import("tsx/esm/api");
register({ tsconfig: process.env.TSX_TSCONFIG_PATH });
await import(pathToFileURL(join(root, "cli", "main.ts")).href);
