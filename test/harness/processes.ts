/**
 * The processes a test started and what is left of them, read from /proc: the `quasar dev`
 * tests check that stopping the CLI leaves nothing behind.
 */
import { readFile } from "node:fs/promises";
import { allPids, readProcStat } from "./proc-stat.js";

/** Every process whose parent chain leads to `root`, read from /proc. */
export async function descendantsOf(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const pid of allPids()) {
    const stat = readProcStat(pid);
    if (stat) parents.set(pid, stat.ppid); // else it exited while we looked
  }
  const result: number[] = [];
  for (const pid of parents.keys()) {
    let current = parents.get(pid);
    while (current !== undefined && current > 1) {
      if (current === root) {
        result.push(pid);
        break;
      }
      current = parents.get(current);
    }
  }
  return result;
}

/**
 * The survivors among `pids`, with their command lines for the failure message. A process
 * still in its exit path gets `graceMs` (two seconds by default).
 */
export async function survivors(pids: number[], graceMs = 2_000): Promise<string[]> {
  for (let waited = 0; waited < graceMs && pids.some(alive); waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const left: string[] = [];
  for (const pid of pids.filter(alive)) left.push(`${pid} ${await commandLine(pid)}`);
  return left;
}

/** The process's command line, arguments joined by spaces; empty when it is gone. */
export async function commandLine(pid: number): Promise<string> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  return cmdline.replaceAll("\0", " ").trim();
}

/** Running, not merely a zombie waiting for a reaper (this machine's pid 1 may not reap). */
export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readProcStat(pid);
  return stat !== undefined && stat.state !== "Z";
};
