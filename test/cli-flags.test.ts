import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Command } from "commander";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildProgram } from "@/cli/program.js";
import {
  applySettingFlags,
  ENV_ONLY_SETTINGS,
  flagNameOf,
  SETTING_NAMES,
  takesSettingFlags,
} from "@/cli/settings.js";
import { TEST_DATABASE_URL } from "./harness/postgres.js";

/**
 * "Flags beat the environment" holds on every command: each leaf of the real command tree
 * accepts every flag-able setting, and what its action resolves has the flag's value over
 * the environment's. Then a few real runs of the command show the flag reaching the part
 * that reads it (issue 12: `quasar status --database-url` was refused).
 */

/** Every runnable command, with placeholder arguments for its required ones. */
function leaves(command: Command, path: string[] = []): { path: string[]; args: string[] }[] {
  if (command.commands.length === 0) {
    const args = command.registeredArguments
      .filter((argument) => argument.required)
      .map((argument) => (argument.name() === "what" ? "storage" : "x"));
    return [{ path, args }];
  }
  return command.commands.flatMap((child) => leaves(child, [...path, child.name()]));
}

function findCommand(program: Command, path: string[]): Command {
  let command = program;
  for (const name of path) {
    const next = command.commands.find((child) => child.name() === name);
    if (!next) throw new Error(`no command ${path.join(" ")}`);
    command = next;
  }
  return command;
}

const FLAGGED = SETTING_NAMES.filter((name) => !ENV_ONLY_SETTINGS.has(name));
const ALL = leaves(buildProgram(new AbortController().signal));

describe("every command × every setting flag", () => {
  it("walks the whole tree (a command added later is walked too)", () => {
    const names = ALL.map((leaf) => leaf.path.join(" "));
    expect(names).toEqual(
      expect.arrayContaining(["status", "audit replay", "audit verify", "audit log", "dev"]),
    );
    expect(names.length).toBeGreaterThanOrEqual(14);
    expect(FLAGGED.length).toBeGreaterThanOrEqual(30);
  });

  for (const leaf of ALL) {
    const name = leaf.path.join(" ");
    it(`quasar ${name}: accepts every setting flag and it beats the environment`, async () => {
      for (const setting of FLAGGED) {
        const program = buildProgram(new AbortController().signal);
        const command = findCommand(program, leaf.path);
        expect(takesSettingFlags(command), `${name} takes setting flags`).toBe(true);
        // The real action would start or connect to things: observe what it would resolve.
        let resolved: string | undefined;
        command.action((...args: unknown[]) => {
          const options = args.at(-2) as Record<string, unknown>;
          resolved = applySettingFlags(options, { [setting]: "from-env" })[setting];
        });
        const value = `from-flag-${setting.length}`;
        await program.parseAsync([...leaf.path, ...leaf.args, `--${flagNameOf(setting)}`, value], {
          from: "user",
        });
        expect(resolved, `quasar ${name} --${flagNameOf(setting)}`).toBe(value);
      }
    });
  }
});

const ROOT = join(import.meta.dirname, "..");
const QUASAR = join(ROOT, "bin", "quasar.js");
const NODE = join(ROOT, "node_modules", ".bin", "node");
const NOWHERE = "postgresql://postgres@127.0.0.1:1/postgres";

let cwd: string;
beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), "quasar-cli-flags-"));
});
afterAll(async () => {
  await rm(cwd, { recursive: true, force: true });
});

async function quasar(args: string[], env: Record<string, string>) {
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

describe("flags reach what the command reads", () => {
  it("quasar status --database-url beats DATABASE_URL", async () => {
    const refused = await quasar(["status", "--json"], { DATABASE_URL: NOWHERE });
    expect(refused.code).toBe(0);
    expect(refused.stdout).toMatch(/ECONNREFUSED|connect/);
    const given = await quasar(
      ["status", "--json", "--database-url", TEST_DATABASE_URL, "--reconciler-schema", "nope_x"],
      { DATABASE_URL: NOWHERE },
    );
    expect(given.code, given.stderr).toBe(0);
    const report = JSON.parse(given.stdout) as { problems: string[] };
    // Connected: what is missing now is the (flag-named) schema's tables, not the server.
    expect(report.problems.join("\n")).not.toMatch(/ECONNREFUSED/);
    expect(report.problems.join("\n")).toMatch(/nope_x/);
  });

  it("quasar audit log --database-url --reconciler-schema", async () => {
    const result = await quasar(
      ["audit", "log", "--database-url", TEST_DATABASE_URL, "--reconciler-schema", "nope_y"],
      { DATABASE_URL: NOWHERE },
    );
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("no table nope_y.reconcile_log");
  });

  it("a bad flag value is named like a bad environment value", async () => {
    const result = await quasar(["audit", "verify", "--pin-ttl", "forever"], {});
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("QUASAR_PIN_TTL");
  });
});
