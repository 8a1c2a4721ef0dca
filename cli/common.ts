import type { ChainConfig, QuasarConfig } from "@/core/config/schema.js";
import { connectDatabase } from "@/db/connect.js";
import { UsageError } from "./errors.js";

/** Opens the shared database for a short-lived command; the caller destroys it. */
export function openDatabase(config: QuasarConfig, applicationName: string) {
  return connectDatabase({
    databaseUrl: config.DATABASE_URL,
    maxConnections: 2,
    applicationName,
    statementTimeoutMs: config.QUASAR_DB_STATEMENT_TIMEOUT,
    acquireTimeoutMs: config.QUASAR_DB_ACQUIRE_TIMEOUT,
  });
}

/** The configured chain `--chain` names, or the only one when there is one. */
export function pickChain(config: QuasarConfig, chainOption: unknown): ChainConfig {
  const chains = config.QUASAR_CHAINS as ChainConfig[];
  if (chainOption === undefined) {
    if (chains.length === 1) return chains[0] as ChainConfig;
    throw new UsageError("--chain is required when several chains are configured", {
      details: `configured chains: ${chains.map((chain) => chain.id).join(", ")}`,
    });
  }
  const id = parseWholeNumber(String(chainOption), "--chain");
  const chain = chains.find((candidate) => candidate.id === id);
  if (!chain) {
    throw new UsageError(`chain ${id} is not in QUASAR_CHAINS`, {
      details: `configured chains: ${chains.map((candidate) => candidate.id).join(", ")}`,
    });
  }
  return chain;
}

export function parseWholeNumber(text: string, flag: string): number {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`${flag} expects a whole number, got "${text}"`);
  }
  return Number(text);
}

export function parseBlock(text: string, flag: string): bigint {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} expects a block number, got "${text}"`);
  return BigInt(text);
}

/** An ISO 8601 instant or seconds since the epoch. */
export function parseInstant(text: string, flag: string): Date {
  const date = /^\d+$/.test(text) ? new Date(Number(text) * 1000) : new Date(text);
  if (Number.isNaN(date.getTime())) {
    throw new UsageError(`${flag} expects an ISO 8601 time or Unix seconds, got "${text}"`);
  }
  return date;
}

/** JSON.stringify that writes bigints as decimal strings. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_, item) => (typeof item === "bigint" ? item.toString() : item), 2);
}
