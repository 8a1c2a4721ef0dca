/**
 * The README's configuration table, generated from the one zod schema
 * (core/config/schema.ts): every variable, its default and its meaning, secrets marked.
 *
 *   tsx scripts/config-table.ts            prints the table
 *   tsx scripts/config-table.ts --write    replaces it in README.md between the markers
 *
 * test/cli-config-table.test.ts fails when README.md's table differs from this output.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ENV_ONLY_SETTINGS, flagNameOf, SETTING_NAMES, settingInfo } from "@/cli/settings.js";
import { SECRET_SETTINGS } from "@/core/config/schema.js";

export const CONFIG_START_MARKER = "<!-- config:start -->";
export const CONFIG_END_MARKER = "<!-- config:end -->";

/** A markdown table cell: pipes escaped, line breaks flattened. */
function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}

function defaultCell(value: string): string {
  if (value === "") return "(empty)";
  // Long JSON defaults are explained in the meaning column; keep the table readable.
  return value.length > 60 ? "see meaning" : `\`${cell(value)}\``;
}

export function renderConfigTable(): string {
  const header = ["Variable", "Flag", "Default", "Meaning"];
  const rows = SETTING_NAMES.map((name) => {
    const { description, defaultValue } = settingInfo(name);
    const flag = ENV_ONLY_SETTINGS.has(name) ? "(env only)" : `\`--${flagNameOf(name)}\``;
    const secret = SECRET_SETTINGS.has(name)
      ? " Secret: masked in logs and `quasar config check`."
      : "";
    return [`\`${name}\``, flag, defaultCell(defaultValue), `${cell(description)}${secret}`];
  });
  // Columns padded as biome formats markdown tables, so `biome check` leaves the README alone.
  const widths = header.map((title, column) =>
    Math.max(3, title.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: string[]) =>
    `| ${cells.map((text, column) => text.padEnd(widths[column] ?? 0)).join(" | ")} |`;
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join(
    "\n",
  );
}

/** A table's cells, trimmed, row by row: compares tables whatever their padding. */
export function tableCells(table: string): string[][] {
  return table
    .trim()
    .split("\n")
    .map((row) =>
      row
        .trim()
        .replace(/^\|/, "")
        .replace(/\|$/, "")
        .split(/(?<!\\)\|/)
        .map((text) => text.trim()),
    )
    .map((cells) => (cells.every((text) => /^-+$/.test(text)) ? cells.map(() => "---") : cells));
}

/** The text between the markers of `readme`, or undefined when a marker is missing. */
export function tableInReadme(readme: string): string | undefined {
  const start = readme.indexOf(CONFIG_START_MARKER);
  const end = readme.indexOf(CONFIG_END_MARKER);
  if (start < 0 || end < start) return undefined;
  return readme.slice(start + CONFIG_START_MARKER.length, end).trim();
}

export function replaceTable(readme: string, table: string): string {
  const start = readme.indexOf(CONFIG_START_MARKER);
  const end = readme.indexOf(CONFIG_END_MARKER);
  if (start < 0 || end < start) {
    throw new Error(`README.md has no ${CONFIG_START_MARKER} … ${CONFIG_END_MARKER} markers`);
  }
  return `${readme.slice(0, start + CONFIG_START_MARKER.length)}\n${table}\n${readme.slice(end)}`;
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const table = renderConfigTable();
  if (process.argv.includes("--write")) {
    const path = join(fileURLToPath(new URL("..", import.meta.url)), "README.md");
    writeFileSync(path, replaceTable(readFileSync(path, "utf8"), table));
    process.stdout.write(`updated the configuration table in ${path}\n`);
  } else {
    process.stdout.write(`${table}\n`);
  }
}
