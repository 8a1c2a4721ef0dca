/**
 * The processes a test started and what is left of them, read from /proc: the `quasar dev`
 * tests check that stopping the CLI leaves nothing behind.
 */
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";

/** Every process whose parent chain leads to `root`, read from /proc. */
export async function descendantsOf(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      // pid (comm) state ppid …: comm may hold spaces and parentheses; split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      parents.set(Number(entry), Number(fields[1]));
    } catch {
      // exited while we looked
    }
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
  for (const pid of pids.filter(alive)) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    left.push(`${pid} ${cmdline.replaceAll("\0", " ").trim()}`);
  }
  return left;
}

/** Running, not merely a zombie waiting for a reaper (this machine's pid 1 may not reap). */
export const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
};
