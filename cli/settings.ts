import { type Command, Option } from "commander";
import { type Environment, loadConfig } from "@/core/config/load.js";
import {
  configSchema,
  EMPTY_MEANS_NONE,
  type QuasarConfig,
  type SettingName,
} from "@/core/config/schema.js";

/**
 * Where each setting comes from when the CLI starts something: a flag beats the
 * environment, the environment beats the schema's default. Flags are derived from the
 * setting names (QUASAR_PIN_TTL → --pin-ttl, DATABASE_URL → --database-url), so the one
 * zod schema stays the only list of settings.
 */
export const SETTING_SOURCES = ["default", "env", "flag"] as const;
export type SettingSource = (typeof SETTING_SOURCES)[number];

/** Raw string values given on the command line, per setting. */
export type SettingFlags = Partial<Record<SettingName, string>>;

/** Every setting name, in the schema's order. */
export const SETTING_NAMES = Object.keys(configSchema.shape) as SettingName[];

/**
 * Settings never taken from a flag: a flag's value is visible to every user of the machine
 * (`ps`, /proc/<pid>/cmdline) and lands in shell history. Set these in the environment.
 */
export const ENV_ONLY_SETTINGS: ReadonlySet<SettingName> = new Set<SettingName>([
  "QUASAR_API_KEYS",
  "QUASAR_ADMIN_TOKEN",
]);

/** Settings whose flag is repeatable and whose values are joined with commas. */
const REPEATABLE_FLAGS: Partial<Record<SettingName, string>> = {
  QUASAR_BACKENDS: "backend",
  QUASAR_CORS_ORIGINS: "cors-origin",
};

/** The flag (without dashes) that sets `name`. */
export function flagNameOf(name: SettingName): string {
  return (
    REPEATABLE_FLAGS[name] ??
    name
      .replace(/^QUASAR_/, "")
      .toLowerCase()
      .replaceAll("_", "-")
  );
}

/** commander's attribute name for a flag: kebab-case to camelCase. */
function attributeOf(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}

/** The documentation and raw (string) default of one setting, read from the zod schema. */
export function settingInfo(name: SettingName): { description: string; defaultValue: string } {
  const schema = configSchema.shape[name];
  return { description: schema.description ?? "", defaultValue: rawDefaultOf(schema) };
}

type ZodNode = { _zod: { def: { type: string; in?: ZodNode; defaultValue?: unknown } } };

function rawDefaultOf(schema: unknown): string {
  let node = schema as ZodNode | undefined;
  // Every setting is `z.string().default(raw)`, possibly piped into a transform.
  while (node) {
    const def = node._zod.def;
    if (def.type === "default") return String(def.defaultValue);
    node = def.type === "pipe" ? def.in : undefined;
  }
  return "";
}

/** Commands given the setting flags: test/cli-flags.test.ts checks every command is one. */
const SETTING_COMMANDS = new WeakSet<Command>();

export function takesSettingFlags(command: Command): boolean {
  return SETTING_COMMANDS.has(command);
}

/**
 * Adds one option per flag-able setting to `command` (and returns it). Every command that
 * loads the configuration gets all of them: loading validates every setting, so any of them
 * can be the one a user needs to override. `hidden` keeps them out of a short command's
 * `--help` (a footer points at the list) while still accepting them.
 */
export function addSettingOptions(command: Command, options: { hidden?: boolean } = {}): Command {
  for (const name of SETTING_NAMES) {
    if (ENV_ONLY_SETTINGS.has(name)) continue;
    const flag = flagNameOf(name);
    const { description } = settingInfo(name);
    const option = REPEATABLE_FLAGS[name]
      ? new Option(`--${flag} <value>`, `${description} Repeatable. (${name})`).argParser(
          (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
        )
      : new Option(`--${flag} <value>`, `${description} (${name})`);
    if (options.hidden) option.hideHelp();
    command.addOption(option);
  }
  if (options.hidden) {
    command.addHelpText(
      "after",
      "\nEvery setting is also accepted as a flag and beats the environment: --database-url,\n--reconciler-schema, --chains, --backend … (the full list: `quasar config check --help`).",
    );
  }
  SETTING_COMMANDS.add(command);
  return command;
}

/** The environment a command runs with: `base` (environment, dev.env) with its setting flags applied. */
export function applySettingFlags(
  options: Record<string, unknown>,
  base: Environment,
): Record<string, string | undefined> {
  return resolveSettings(base, settingFlagsFrom(options)).env;
}

/** Picks the setting flags out of commander's parsed options. */
export function settingFlagsFrom(options: Record<string, unknown>): SettingFlags {
  const flags: SettingFlags = {};
  for (const name of SETTING_NAMES) {
    if (ENV_ONLY_SETTINGS.has(name)) continue;
    const value = options[attributeOf(flagNameOf(name))];
    if (typeof value === "string") flags[name] = value;
    else if (Array.isArray(value) && value.length > 0) flags[name] = value.map(String).join(",");
  }
  return flags;
}

export type ResolvedSettings = {
  /** The environment children are started with: the parent's, with the flags applied. */
  env: Record<string, string | undefined>;
  /** Where each setting's value came from. */
  sources: Record<SettingName, SettingSource>;
  /** Each setting's raw string value (the default's text when unset); not masked. */
  raw: Record<SettingName, string>;
};

/** Applies flags over the environment and records each setting's source. Does not validate. */
export function resolveSettings(env: Environment, flags: SettingFlags = {}): ResolvedSettings {
  const merged: Record<string, string | undefined> = { ...env };
  const sources = {} as Record<SettingName, SettingSource>;
  const raw = {} as Record<SettingName, string>;
  for (const name of SETTING_NAMES) {
    const flag = flags[name];
    const fromEnv = env[name];
    if (flag !== undefined && flag !== "") {
      merged[name] = flag;
      sources[name] = "flag";
      raw[name] = flag;
    } else if (fromEnv !== undefined && (fromEnv !== "" || EMPTY_MEANS_NONE.has(name))) {
      sources[name] = "env";
      raw[name] = fromEnv;
    } else {
      sources[name] = "default";
      raw[name] = settingInfo(name).defaultValue;
    }
  }
  return { env: merged, sources, raw };
}

/** Resolves and validates: throws ConfigError naming every bad setting. */
export function resolveConfig(
  env: Environment,
  flags: SettingFlags = {},
): ResolvedSettings & { config: QuasarConfig } {
  const resolved = resolveSettings(env, flags);
  return { ...resolved, config: loadConfig(resolved.env) };
}
