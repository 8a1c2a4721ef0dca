import { execFile } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * The layer rules live in biome.json (`npm run lint`). This suite lints a small tree of probe
 * files with the project's own biome.json and checks that a wrong import and a cycle fail,
 * and that allowed imports pass: a rule that silently stopped matching would fail here.
 */
const ROOT = join(import.meta.dirname, "..");
const BIOME = join(ROOT, "node_modules", ".bin", "biome");
const run = promisify(execFile);

let dir: string;

function write(path: string, text: string): void {
  mkdirSync(dirname(join(dir, path)), { recursive: true });
  writeFileSync(join(dir, path), text);
}

async function lint(): Promise<string> {
  try {
    const { stdout, stderr } = await run(BIOME, ["lint", "--max-diagnostics=200", "."], {
      cwd: dir,
    });
    return stdout + stderr;
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string };
    return `${failed.stdout ?? ""}${failed.stderr ?? ""}`;
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "quasar-layers-"));
  cpSync(join(ROOT, "biome.json"), join(dir, "biome.json"));
  cpSync(join(ROOT, "tsconfig.json"), join(dir, "tsconfig.json"));
  write("package.json", '{"type":"module"}\n');
  write("api/app.ts", "export const app = 1;\n");
  write("core/rule.ts", "export const rule = 1;\n");
  // Wrong: the database layer reaches up into the API.
  write("db/up.ts", 'import { app } from "@/api/app.js";\nexport const up = app;\n');
  // Wrong: a relative import that leaves its folder, dodging the alias rules.
  write("db/sneak.ts", 'import { app } from "../api/app.js";\nexport const sneak = app;\n');
  // Wrong: src/ (hashed by Ponder) reaches outside itself.
  write("src/handler.ts", 'import { rule } from "@/core/rule.js";\nexport const h = rule;\n');
  // Wrong: a cycle inside one layer.
  write("core/a.ts", 'import { b } from "./b.js";\nexport const a = () => b();\n');
  write("core/b.ts", 'import { a } from "./a.js";\nexport const b = () => a();\n');
  // Allowed: an upper layer uses a lower one.
  write("api/ok.ts", 'import { rule } from "@/core/rule.js";\nexport const ok = rule;\n');
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("layer rules (biome.json)", () => {
  it("fails a wrong import, an escaping relative import, src/ reaching out and a cycle; passes allowed imports", async () => {
    const output = await lint();
    expect(output).toMatch(/db\/up\.ts.*noRestrictedImports/);
    expect(output).toMatch(/db\/sneak\.ts.*noRestrictedImports/);
    expect(output).toMatch(/src\/handler\.ts.*noRestrictedImports/);
    expect(output).toMatch(/core\/(a|b)\.ts.*noImportCycles/);
    expect(output).not.toMatch(/api\/ok\.ts/);
  });
});
