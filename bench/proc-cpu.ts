import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Kysely } from "kysely";
import { sql } from "kysely";
import { readProcStat } from "@/test/harness/proc-stat.js";

/**
 * CPU time of processes on this machine, from /proc/<pid>/stat (utime + stime), for the
 * benches' per-operation CPU figures. Linux only; a process that is gone reads as undefined.
 */

// USER_HZ: the unit of utime/stime. 100 on every Linux this runs on (getconf CLK_TCK).
const TICKS_PER_SECOND = 100;

/** Seconds of CPU (user + system) the process has used so far, or undefined when it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  const stat = readProcStat(pid);
  return stat && (stat.utimeTicks + stat.stimeTicks) / TICKS_PER_SECOND;
}

/**
 * Pids of the PostgreSQL backends serving `clientPid`'s connections: pg_stat_activity's
 * client ports matched against the TCP sockets that process holds (application names are
 * shared by every API a test or helper runs on this machine, ports are not).
 */
export async function postgresBackendPids(
  db: Kysely<unknown>,
  clientPid: number,
): Promise<number[]> {
  const ports = clientPorts(clientPid);
  const { rows } = await sql<{ pid: number; client_port: number | null }>`
    select pid, client_port from pg_stat_activity where backend_type = 'client backend'
  `.execute(db);
  return rows
    .filter((row) => row.client_port !== null && ports.has(Number(row.client_port)))
    .map((row) => Number(row.pid));
}

/** Local TCP ports of the sockets process `pid` has open. */
function clientPorts(pid: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const match = /^socket:\[(\d+)\]$/.exec(target);
        if (match?.[1]) inodes.add(match[1]);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const table of ["tcp", "tcp6"]) {
    let text = "";
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const inode = fields[9];
      if (!local || !inode || !inodes.has(inode)) continue;
      ports.add(Number.parseInt(local.split(":")[1] ?? "0", 16));
    }
  }
  return ports;
}

/**
 * Sums CPU over a set of processes between two readings. Pids are collected at both ends;
 * one that appears later counts from zero (it started within the window), one that ended
 * before the last reading loses its time (a short-lived PostgreSQL connection): pools that
 * keep their connections open are measured whole.
 */
export function cpuMeter() {
  const start = new Map<number, number>();
  const last = new Map<number, number>();
  return {
    /** Reads every pid now; call before and after the measured work. */
    sample(pids: Iterable<number>, first: boolean): void {
      for (const pid of pids) {
        const seconds = processCpuSeconds(pid);
        if (seconds === undefined) continue;
        if (first) start.set(pid, seconds);
        else if (!start.has(pid)) start.set(pid, 0);
        last.set(pid, seconds);
      }
    },
    /** CPU seconds used between the first and the latest sample. */
    seconds(): number {
      let total = 0;
      for (const [pid, end] of last) total += end - (start.get(pid) ?? end);
      return total;
    },
  };
}
