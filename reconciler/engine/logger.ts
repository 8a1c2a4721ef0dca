import { type Logger, pino } from "pino";

/**
 * The reconciler's structured logger: JSON lines `{msg, cid, backend, err}`. Backends are
 * named by `backend.label` (secrets masked), never by connection string; `redact` is a second
 * guard for fields that might carry one.
 */
export function createLogger(options: { level: string; name?: string }): Logger {
  return pino({
    name: options.name ?? "quasar-reconciler",
    level: options.level,
    redact: {
      paths: ["connectionString", "token", "*.connectionString", "*.token", "config.DATABASE_URL"],
      censor: "[secret]",
    },
  });
}

export type { Logger };
