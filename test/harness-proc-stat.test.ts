/**
 * The /proc/<pid>/stat parser the tests and benches share (test/harness/proc-stat.ts), on
 * real processes: this one, and a child whose command name holds a space and a parenthesis.
 */
import { spawn } from "node:child_process";
import { chmod, copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { allPids, readProcStat } from "./harness/proc-stat.js";

describe("readProcStat", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "quasar-proc-stat-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("reads this process's parent, group and CPU time", () => {
    const stat = readProcStat(process.pid);
    expect(stat?.ppid).toBe(process.ppid);
    expect(allPids()).toContain(process.pid);
    // The kernel counts in ticks of 10 ms; Node's figure is exact.
    const { user, system } = process.cpuUsage();
    const ticks = (stat?.utimeTicks ?? 0) + (stat?.stimeTicks ?? 0);
    expect(Math.abs(ticks * 10_000 - (user + system))).toBeLessThan(200_000);
  });

  it("splits after the command name even when it holds ') ' and a space, and says when a process is gone", async () => {
    const tricky = join(dir, "a) b c");
    await copyFile("/bin/sleep", tricky);
    await chmod(tricky, 0o755);
    const child = spawn(tricky, ["30"], { detached: true, stdio: "ignore" });
    const pid = child.pid as number;
    try {
      const stat = readProcStat(pid);
      expect(stat).toMatchObject({ ppid: process.pid, pgrp: pid });
      expect(["R", "S"]).toContain(stat?.state);
    } finally {
      child.kill("SIGKILL");
      await new Promise((resolve) => child.once("exit", resolve));
    }
    expect(readProcStat(pid)).toBeUndefined();
  });
});
