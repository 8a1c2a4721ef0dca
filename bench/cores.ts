import { execFile } from "node:child_process";
import { promisify } from "node:util";

/**
 * Moves running processes (our own: the bench, an API child, our PostgreSQL backends) onto
 * `cpus` with `taskset -cp`, so they do not share the backend daemon's core. True when every
 * one was moved; false when taskset is missing or refused (then the figures are unisolated).
 */
export async function pinToCores(pids: readonly number[], cpus: string): Promise<boolean> {
  let all = pids.length > 0;
  for (const pid of pids) {
    try {
      // -a: every thread of the process (Node's and Go's worker threads too).
      await promisify(execFile)("taskset", ["-a", "-cp", cpus, String(pid)], { timeout: 5_000 });
    } catch {
      all = false;
    }
  }
  return all;
}
