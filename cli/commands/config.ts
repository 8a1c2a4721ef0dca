import type { Command } from "commander";
import { ConfigError } from "@/core/config/errors.js";
import { loadConfig } from "@/core/config/load.js";
import type { SettingName } from "@/core/config/schema.js";
import { maskSetting } from "../mask.js";
import {
  addSettingOptions,
  resolveSettings,
  SETTING_NAMES,
  type SettingSource,
  settingFlagsFrom,
} from "../settings.js";
import { formatTable } from "../table.js";

/** One line of `quasar config check`: a setting, where it came from and its (masked) value. */
export type SettingReport = {
  name: SettingName;
  source: SettingSource;
  value: string;
  /** Why the value is invalid; absent when it is valid. */
  problem?: string;
};

/**
 * Validates the configuration the CLI would start with (environment plus flags) and reports
 * every setting. Never prints a secret: secret settings are masked.
 */
export function checkConfig(
  env: Readonly<Record<string, string | undefined>>,
  options: Record<string, unknown>,
): { ok: boolean; settings: SettingReport[] } {
  const resolved = resolveSettings(env, settingFlagsFrom(options));
  const problems = new Map<SettingName, string>();
  try {
    loadConfig(resolved.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) {
      const previous = problems.get(problem.setting);
      problems.set(problem.setting, previous ? `${previous}; ${problem.message}` : problem.message);
    }
  }
  const settings = SETTING_NAMES.map((name): SettingReport => {
    const problem = problems.get(name);
    return {
      name,
      source: resolved.sources[name],
      value: maskSetting(name, resolved.raw[name]),
      ...(problem === undefined ? {} : { problem }),
    };
  });
  return { ok: problems.size === 0, settings };
}

export function registerConfigCommands(program: Command): void {
  const config = program.command("config").description("Inspect Quasar's configuration");
  addSettingOptions(
    config
      .command("check")
      .description(
        "Validate the configuration (environment and flags) and print every setting with its source; secrets are masked. Exit 1 when invalid.",
      )
      .option("--json", "print JSON instead of a table"),
  ).action((options: Record<string, unknown>) => {
    const { ok, settings } = checkConfig(process.env, options);
    if (options.json === true) {
      process.stdout.write(`${JSON.stringify({ ok, settings }, null, 2)}\n`);
    } else {
      const rows = settings.map((setting) => [
        setting.problem ? `${setting.name} ✗` : setting.name,
        setting.source,
        setting.value === "" ? '""' : setting.value,
      ]);
      process.stdout.write(`${formatTable(["SETTING", "SOURCE", "VALUE"], rows)}\n`);
      for (const setting of settings) {
        if (setting.problem) process.stderr.write(`invalid ${setting.name}: ${setting.problem}\n`);
      }
      process.stdout.write(ok ? "configuration is valid\n" : "");
    }
    if (!ok) process.exitCode = 1;
  });
}
