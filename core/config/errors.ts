import type { SettingName } from "./schema.js";

export type ConfigProblem = { setting: SettingName; message: string };

/** The configuration is invalid: start-up stops, naming each bad setting and what it expects. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `invalid configuration:\n${problems.map((p) => `  ${p.setting}: ${p.message}`).join("\n")}`,
    );
  }
}
