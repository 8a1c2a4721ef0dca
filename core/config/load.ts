import { ConfigError } from "./errors.js";
import { configSchema, EMPTY_MEANS_NONE, type QuasarConfig, type SettingName } from "./schema.js";

export type Environment = Readonly<Record<string, string | undefined>>;

/**
 * Validates the environment against the one schema. Empty strings count as unset, so
 * `FOO= npm run …` falls back to the default instead of failing on "", except for the
 * settings in EMPTY_MEANS_NONE, where empty is a value of its own.
 * Throws ConfigError naming every bad setting, the value received and what was expected.
 */
export function loadConfig(env: Environment = process.env): QuasarConfig {
  const input: Partial<Record<SettingName, string>> = {};
  for (const key of Object.keys(configSchema.shape) as SettingName[]) {
    const value = env[key];
    if (value !== undefined && (value !== "" || EMPTY_MEANS_NONE.has(key))) input[key] = value;
  }
  const result = configSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const setting = String(issue.path[0] ?? "configuration") as SettingName;
    return { setting, message: issue.message };
  });
  throw new ConfigError(problems);
}
