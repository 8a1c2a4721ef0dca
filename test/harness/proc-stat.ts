/**
 * /proc/<pid>/stat as the tests and benches read it (Linux only): one parser for the fields
 * they use, so the command name's parentheses and spaces are handled in one place.
 */
import { readdirSync, readFileSync } from "node:fs";

export type ProcStat = {
  /** R, S, D, Z (a zombie waiting for its reaper), … */
  state: string;
  ppid: number;
  /** The process group. */
  pgrp: number;
  /** CPU time in clock ticks (USER_HZ), user and system. */
  utimeTicks: number;
  stimeTicks: number;
};

/** The process's stat fields, or undefined when it is gone (or went while being read). */
export function readProcStat(pid: number | string): ProcStat | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // pid (comm) state ppid pgrp …: comm may hold spaces and parentheses; split after the last
  // ')'. fields[0] is field 3 (state), so field n is fields[n - 3].
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return {
    state: fields[0] ?? "",
    ppid: Number(fields[1]),
    pgrp: Number(fields[2]),
    utimeTicks: Number(fields[11]),
    stimeTicks: Number(fields[12]),
  };
}

/** The pids of every process on this machine, now. */
export function allPids(): number[] {
  return readdirSync("/proc")
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number);
}
