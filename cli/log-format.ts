/**
 * How the supervisor shows its parts' log lines. The parts always write pino JSON lines;
 * `json` passes each one through untouched behind its `name │ ` prefix (log shippers, `quasar
 * start` in production), `pretty` renders it for a person: one line per event with the part
 * (coloured), the time, the level, the message and the remaining fields as key=value. Lines
 * that are not pino JSON (Ponder's own output, the supervisor's notes) keep their text.
 */
export const LOG_FORMATS = ["pretty", "json"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Renders one line of part `name` (no trailing newline in, one out). */
export type LineRenderer = (name: string, line: string) => string;

/**
 * `--pretty` / `--json` when given; else `fallback` (`quasar dev`: pretty; `quasar start`:
 * pretty on a terminal, JSON otherwise).
 */
export function chooseLogFormat(
  options: { pretty?: unknown; json?: unknown },
  fallback: LogFormat,
): LogFormat {
  if (options.json === true) return "json";
  if (options.pretty === true) return "pretty";
  return fallback;
}

/** Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function useColor(
  stream: { isTTY?: boolean },
  env: Readonly<Record<string, string | undefined>> = process.env,
): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== "") return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== "0") return true;
  return stream.isTTY === true;
}

const ANSI = {
  reset: "\x1b[0m",
  dim: "\x1b[2m",
  bold: "\x1b[1m",
  red: "\x1b[31m",
  green: "\x1b[32m",
  yellow: "\x1b[33m",
  blue: "\x1b[34m",
  magenta: "\x1b[35m",
  cyan: "\x1b[36m",
  gray: "\x1b[90m",
} as const;
type Colour = keyof typeof ANSI;

const PART_COLOURS: Record<string, Colour> = {
  api: "cyan",
  indexer: "magenta",
  reconciler: "green",
  postgres: "blue",
  anvil: "yellow",
};

const LEVELS: Record<number, { label: string; colour: Colour }> = {
  10: { label: "TRACE", colour: "gray" },
  20: { label: "DEBUG", colour: "gray" },
  30: { label: "INFO ", colour: "green" },
  40: { label: "WARN ", colour: "yellow" },
  50: { label: "ERROR", colour: "red" },
  60: { label: "FATAL", colour: "red" },
};

/** Fields every pino line carries that a person does not need to read. */
const HIDDEN_FIELDS = new Set(["level", "time", "msg", "pid", "hostname", "name", "v"]);

/** Plain prefixing: what the supervisor always did, and the `json` format. */
export function prefixRenderer(width: number): LineRenderer {
  return (name, line) => `${name.padEnd(width)} │ ${line}`;
}

export function prettyRenderer(width: number, color: boolean): LineRenderer {
  const paint = (colour: Colour, text: string) =>
    color ? `${ANSI[colour]}${text}${ANSI.reset}` : text;
  return (name, line) => {
    const part = paint(PART_COLOURS[name] ?? "bold", name.padEnd(width));
    const record = parsePinoLine(line);
    if (!record) return `${part} │ ${line}`;
    const level = LEVELS[record.level] ?? { label: String(record.level), colour: "bold" };
    const time = paint("dim", clock(record.time));
    const fields = Object.entries(record)
      .filter(([key]) => !HIDDEN_FIELDS.has(key))
      .map(([key, value]) => `${key}=${fieldText(value)}`)
      .join(" ");
    const message = record.level >= 50 ? paint("red", record.msg) : record.msg;
    return `${part} │ ${time} ${paint(level.colour, level.label)} ${message}${fields ? ` ${paint("dim", fields)}` : ""}`;
  };
}

type PinoRecord = Record<string, unknown> & { level: number; msg: string; time: number };

/** A pino JSON line, or undefined for anything else. */
export function parsePinoLine(line: string): PinoRecord | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    if (typeof value !== "object" || value === null) return undefined;
    const record = value as Record<string, unknown>;
    if (typeof record.level !== "number") return undefined;
    return {
      ...record,
      level: record.level,
      msg: typeof record.msg === "string" ? record.msg : "",
      time: typeof record.time === "number" ? record.time : Date.now(),
    };
  } catch {
    return undefined;
  }
}

/** Local wall-clock time with milliseconds: HH:MM:SS.mmm. */
function clock(ms: number): string {
  const date = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

/** A field's value on one line: bare when it has no spaces, JSON otherwise (never a newline). */
function fieldText(value: unknown): string {
  if (typeof value === "string") {
    return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value);
  }
  if (typeof value === "number" || typeof value === "boolean" || value === null) {
    return String(value);
  }
  return JSON.stringify(value) ?? String(value);
}
