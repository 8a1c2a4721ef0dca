import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type SupervisorEvent, superviseChildren } from "@/cli/runtime/supervisor.js";

const ROOT = join(import.meta.dirname, "..");
const QUASAR = join(ROOT, "bin", "quasar.js");
const NODE = join(ROOT, "node_modules", ".bin", "node");

let cwd: string;
beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), "quasar-cli-start-"));
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

/** Runs `quasar …` to completion with only PATH/HOME and the given environment. */
async function quasar(args: string[], env: Record<string, string> = {}) {
  const child = spawn(NODE, [QUASAR, ...args], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe("quasar start with a bad configuration", () => {
  it("exits non-zero naming the bad setting from the environment", async () => {
    const result = await quasar(["start"], { QUASAR_PIN_TTL: "forever" });
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("QUASAR_PIN_TTL");
    expect(result.stderr).toContain("forever");
  });

  it("exits non-zero naming the setting behind a bad flag", async () => {
    const result = await quasar(["start", "--api-port", "99999"]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("QUASAR_API_PORT");
  });

  it("config check prints every setting with its source, masked, and fails on a bad one", async () => {
    const ok = await quasar(["config", "check", "--json"], {
      QUASAR_ADMIN_TOKEN: "do-not-print-me",
      DATABASE_URL: "postgres://quasar:pw-do-not-print@db:5432/q",
    });
    expect(ok.code).toBe(0);
    expect(ok.stdout).not.toContain("do-not-print-me");
    expect(ok.stdout).not.toContain("pw-do-not-print");
    const report = JSON.parse(ok.stdout) as {
      ok: boolean;
      settings: { name: string; source: string }[];
    };
    expect(report.ok).toBe(true);
    expect(report.settings.find((s) => s.name === "QUASAR_ADMIN_TOKEN")?.source).toBe("env");
    expect(report.settings.find((s) => s.name === "QUASAR_PIN_TTL")?.source).toBe("default");

    const bad = await quasar(["config", "check"], { QUASAR_CHAINS: "not json" });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("QUASAR_CHAINS");
  });
});

describe("supervisor", () => {
  it("restarts a crashing child with growing delays, prefixes its lines, and stops it on abort", async () => {
    const controller = new AbortController();
    const out = new PassThrough();
    let lines = "";
    out.on("data", (chunk: Buffer) => {
      lines += chunk.toString();
    });
    const events: SupervisorEvent[] = [];
    const supervisor = superviseChildren({
      children: [
        // A real process that crashes at once.
        {
          name: "crasher",
          command: NODE,
          args: ["-e", "console.log('up'); process.exit(3)"],
          env: {},
          cwd,
        },
        // A real process that runs until it is told to stop.
        {
          name: "steady",
          command: NODE,
          args: [
            "-e",
            "console.log('steady up'); process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000)",
          ],
          env: {},
          cwd,
        },
      ],
      signal: controller.signal,
      out,
      err: new PassThrough(),
      backoffBaseMs: 100,
      backoffMaxMs: 400,
      onEvent: (event) => events.push(event),
    });
    await expect
      .poll(() => events.filter((e) => e.kind === "restarting").length, { timeout: 20_000 })
      .toBeGreaterThanOrEqual(4);
    const delays = events.flatMap((e) => (e.kind === "restarting" ? [e.delayMs] : []));
    // 100, 200, 400, 400 ms with ±20 % jitter: growing, then capped.
    expect(delays[0]).toBeLessThanOrEqual(120);
    expect(delays[1]).toBeGreaterThanOrEqual(160);
    expect(delays[3]).toBeGreaterThanOrEqual(320);
    expect(delays[3]).toBeLessThanOrEqual(480);
    const steadyPid = events.find((e) => e.kind === "started" && e.name === "steady");
    expect(steadyPid).toBeDefined();
    controller.abort();
    await supervisor.done;
    expect(lines).toMatch(/^crasher │ up$/m);
    expect(lines).toMatch(/^steady {2}│ steady up$/m);
    // Stopped, not restarted, and gone.
    expect(events.filter((e) => e.kind === "started" && e.name === "steady")).toHaveLength(1);
    expect(() => process.kill((steadyPid as { pid: number }).pid, 0)).toThrow();
  });
});

describe("supervisor log formats", () => {
  /** Runs one real child that logs through pino, under `format`, and returns what it showed. */
  async function show(format: "pretty" | "json"): Promise<string> {
    const controller = new AbortController();
    const out = new PassThrough();
    let lines = "";
    out.on("data", (chunk: Buffer) => {
      lines += chunk.toString();
    });
    const script = [
      "const { pino } = require('pino');",
      "const logger = pino({ name: 'quasar-api' });",
      "logger.info({ msg: 'api listening', port: 3000 });",
      "logger.warn({ msg: 'backend down', backend: 'ipfs://127.0.0.1:5001' });",
      "console.log('plain text line');",
    ].join(" ");
    const supervisor = superviseChildren({
      children: [{ name: "api", command: NODE, args: ["-e", script], env: {}, cwd: ROOT }],
      signal: controller.signal,
      out,
      err: new PassThrough(),
      format,
      color: false,
      backoffBaseMs: 60_000,
    });
    await expect.poll(() => lines.includes("plain text line"), { timeout: 20_000 }).toBe(true);
    controller.abort();
    await supervisor.done;
    return lines;
  }

  it("pretty: one readable line per event; other lines keep their text", async () => {
    const lines = await show("pretty");
    expect(lines).toMatch(/^api │ \d\d:\d\d:\d\d\.\d{3} INFO {2}api listening port=3000$/m);
    expect(lines).toMatch(
      /^api │ \d\d:\d\d:\d\d\.\d{3} WARN {2}backend down backend=ipfs:\/\/127\.0\.0\.1:5001$/m,
    );
    expect(lines).toMatch(/^api │ plain text line$/m);
    expect(lines).not.toContain('"level"');
  });

  it("json: each part's raw JSON line behind its prefix", async () => {
    const lines = await show("json");
    const first = /^api │ (\{.*\})$/m.exec(lines)?.[1] as string;
    expect(JSON.parse(first)).toMatchObject({ level: 30, msg: "api listening", port: 3000 });
  });
});
