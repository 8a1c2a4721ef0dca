import { type DestinationStream, type Logger, pino } from "pino";

/**
 * The one logger factory of Quasar's processes (the API, the reconciler): JSON lines
 * `{msg, cid, backend, err}`. Backends are named by `backend.label` (secrets masked), never by
 * connection string, and keys never reach a log; `REDACTED_PATHS` is the second guard for
 * fields that might carry a secret, the same in every process.
 */
export const REDACTED_PATHS: readonly string[] = [
  // HTTP: the API key or admin token of a request.
  "authorization",
  "*.authorization",
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-api-key"]',
  // Backends and configuration: connection strings and tokens carry credentials.
  "connectionString",
  "*.connectionString",
  "token",
  "*.token",
  "apiKey",
  "*.apiKey",
  "password",
  "*.password",
  "DATABASE_URL",
  "*.DATABASE_URL",
];

export const REDACTED = "[secret]";

export type CreateLoggerOptions = {
  /** QUASAR_LOG_LEVEL. */
  level: string;
  /** The process: "quasar-api", "quasar-reconciler". */
  name: string;
};

/** A process's logger; `destination` defaults to stdout (tests pass a stream to read it). */
export function createLogger(
  options: CreateLoggerOptions,
  destination?: DestinationStream,
): Logger {
  const settings = {
    name: options.name,
    level: options.level,
    redact: { paths: [...REDACTED_PATHS], censor: REDACTED },
  };
  return destination === undefined ? pino(settings) : pino(settings, destination);
}

export type { Logger };
