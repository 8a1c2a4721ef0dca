import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SETTING_NAMES } from "@/cli/settings.js";
import {
  CONFIG_END_MARKER,
  CONFIG_START_MARKER,
  renderConfigTable,
  replaceTable,
  tableCells,
  tableInReadme,
} from "./config-table.js";

const README = join(import.meta.dirname, "..", "README.md");

describe("README configuration table", () => {
  it("lists every setting of the schema with its default", () => {
    const table = renderConfigTable();
    const rows = new Map(tableCells(table).map((row) => [row[0], row]));
    for (const name of SETTING_NAMES) expect(rows.has(`\`${name}\``), name).toBe(true);
    expect(rows.get("`QUASAR_PIN_TTL`")?.slice(1, 3)).toEqual(["`--pin-ttl`", "`14d`"]);
    expect(rows.get("`QUASAR_ADMIN_TOKEN`")?.slice(1, 3)).toEqual(["(env only)", "(empty)"]);
  });

  it("pads columns exactly as biome formats markdown, so lint leaves the README alone", () => {
    const lines = renderConfigTable().split("\n");
    expect(new Set(lines.map((line) => line.length)).size).toBe(1);
    expect(lines[1]).toMatch(/^\| -+ \| -+ \| -+ \| -+ \|$/);
  });

  it("replaces exactly the text between the markers", () => {
    const readme = `# Title\n\n${CONFIG_START_MARKER}\nold\n${CONFIG_END_MARKER}\n\nrest\n`;
    const updated = replaceTable(readme, "| new |");
    expect(updated).toBe(
      `# Title\n\n${CONFIG_START_MARKER}\n| new |\n${CONFIG_END_MARKER}\n\nrest\n`,
    );
    expect(tableInReadme(updated)).toBe("| new |");
  });

  it("README.md holds the table generated from core/config/schema.ts (run: tsx scripts/config-table.ts --write)", () => {
    const inReadme = tableInReadme(readFileSync(README, "utf8"));
    expect(
      inReadme,
      `README.md needs ${CONFIG_START_MARKER} and ${CONFIG_END_MARKER} around the table`,
    ).toBeDefined();
    // Cell by cell: a formatter may pad the columns differently.
    expect(tableCells(inReadme ?? "")).toEqual(tableCells(renderConfigTable()));
  });
});
