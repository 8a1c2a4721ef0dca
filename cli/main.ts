import { CommanderError } from "commander";
import { ConfigError } from "@/core/config/errors.js";
import { BaseError } from "@/core/errors.js";
import { buildProgram } from "./program.js";
import { signalUntethered } from "./runtime/processes.js";

/**
 * The `quasar` command. One AbortController is the shutdown signal of the whole process:
 * the first SIGINT/SIGTERM/SIGHUP aborts it (every loop and child stops gracefully), a
 * second one exits at once, after signalling the children that would outlive it. SIGHUP is
 * a closed terminal: without it `quasar dev` would die at once and leave its anvil and
 * PostgreSQL (own process groups) running.
 */
const shutdown = new AbortController();
let signals = 0;
for (const name of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(name, () => {
    signals++;
    if (signals > 1) {
      // Exits at once, but not without telling anvil and PostgreSQL to stop: nothing else would.
      signalUntethered();
      process.exit(130);
    }
    shutdown.abort(new Error(`received ${name}`));
  });
}

// After a hang-up, writing to the closed terminal fails (EIO): that must not end the
// process before it has stopped what it started.
for (const stream of [process.stdout, process.stderr]) stream.on("error", () => {});

const program = buildProgram(shutdown.signal);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  process.exitCode = reportError(error);
}
// Open handles (idle pools, keep-alive sockets) must not keep a finished command alive;
// stdout and stderr are synchronous for files and pipes on Linux, so nothing is lost.
process.exit(process.exitCode ?? 0);

/** Prints a thrown error for a person and returns the exit code. */
function reportError(error: unknown): number {
  if (error instanceof CommanderError) {
    // Help and version are "errors" to commander with exit code 0.
    return error.exitCode;
  }
  if (error instanceof ConfigError) {
    process.stderr.write(`${error.message}\n`);
    return 1;
  }
  if (error instanceof BaseError) {
    process.stderr.write(`error: ${error.shortMessage}\n`);
    if (error.details) process.stderr.write(`  ${error.details}\n`);
    return 1;
  }
  if (shutdown.signal.aborted) return 130;
  process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  return 1;
}
