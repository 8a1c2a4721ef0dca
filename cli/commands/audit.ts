import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { createPublicClient, http } from "viem";
import { readChainEvents } from "@/audit/chain-logs.js";
import { readDatabaseHistory } from "@/audit/db-history.js";
import { resolveFinality } from "@/audit/finality.js";
import {
  AUDIT_FORMATS,
  type AuditFormat,
  digestLine,
  entriesToCsv,
  replayToJson,
} from "@/audit/output.js";
import { type ReplayResult, replayDesiredSet } from "@/audit/replay.js";
import type { OffchainRegistration } from "@/core/desired/timeline.js";
import type { Hex } from "@/src/events.js";
import { openDatabase, parseBlock, parseInstant, pickChain } from "../common.js";
import { commandEnvironment } from "../dev-env.js";
import { UsageError } from "../errors.js";
import { createProgress } from "../progress.js";
import { addSettingOptions, applySettingFlags, resolveConfig } from "../settings.js";
import { runAuditLog } from "./audit-log.js";
import { runAuditVerify } from "./audit-verify.js";

export type ReplayOptions = {
  chain?: string;
  toBlock?: string;
  fromBlock?: string;
  at?: string;
  rpc?: string;
  registry?: string;
  format?: string;
  offchain?: string;
  includeOptimistic?: boolean;
  digestOnly?: boolean;
};

/** Runs one replay as the options say; returns the result (printing is the caller's). */
export async function runReplay(
  options: ReplayOptions,
  env: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
): Promise<{ result: ReplayResult; source: "database" | "chain" }> {
  const { config } = resolveConfig(env);
  const chain = pickChain(config, options.chain);
  const toBlock =
    options.toBlock === undefined ? undefined : parseBlock(options.toBlock, "--to-block");
  const at = options.at === undefined ? undefined : parseInstant(options.at, "--at");
  const now = new Date();
  const progress = createProgress(
    `replaying chain ${chain.id}${options.rpc === undefined ? "" : " from its RPC"}`,
    { unit: options.rpc === undefined ? "blocks" : "blocks read (registry, then PinHash logs)" },
  );

  try {
    if (options.rpc !== undefined) {
      // Straight from the chain: nothing of Quasar's database is read.
      const client = createPublicClient({ transport: http(options.rpc, { retryCount: 3 }) });
      const actualId = await client.getChainId();
      if (actualId !== chain.id) {
        throw new UsageError(`--rpc serves chain ${actualId}, not chain ${chain.id}`);
      }
      const registry = (options.registry ?? chain.registry).toLowerCase() as Hex;
      const finality = await resolveFinality(client, chain.id);
      let upTo = toBlock ?? finality.head;
      if (upTo > finality.head) {
        throw new UsageError(`--to-block ${upTo} is above the chain's head ${finality.head}`);
      }
      if (at !== undefined) upTo = await lastBlockAtOrBefore(client, at, upTo);
      const events = await readChainEvents({
        client,
        chainId: chain.id,
        registry,
        fromBlock:
          options.fromBlock === undefined
            ? BigInt(chain.startBlock)
            : parseBlock(options.fromBlock, "--from-block"),
        toBlock: upTo,
        signal,
        onProgress: (done, total) => progress.update(done, total),
      });
      const offchain = options.offchain ? await readOffchainFile(options.offchain) : [];
      const result = replayDesiredSet({
        chainId: chain.id,
        events,
        finalizedBlock: finality.finalizedBlock,
        ...(toBlock === undefined && at === undefined ? {} : { toBlock: upTo }),
        ...(at === undefined ? {} : { at }),
        now,
        ttlMs: config.QUASAR_PIN_TTL,
        offchainRegistrations: offchain,
      });
      return { result, source: "chain" };
    }

    const db = openDatabase(config, "quasar-audit");
    try {
      const history = await readDatabaseHistory({
        db,
        indexerSchema: config.QUASAR_INDEXER_SCHEMA,
        reconcilerSchema: config.QUASAR_RECONCILER_SCHEMA,
        chainId: chain.id,
        signal,
        onProgress: (done, total) => progress.update(done, total),
      });
      const result = replayDesiredSet({
        chainId: chain.id,
        events: history.events,
        finalizedBlock: history.finalizedBlock,
        ...(toBlock === undefined ? {} : { toBlock }),
        ...(at === undefined ? {} : { at }),
        now,
        ttlMs: config.QUASAR_PIN_TTL,
        offchainRegistrations: history.offchainRegistrations,
        ...(options.includeOptimistic ? { optimisticPins: history.optimisticPins } : {}),
      });
      return { result, source: "database" };
    } finally {
      await db.destroy();
    }
  } finally {
    progress.done();
  }
}

/** Binary search for the last block with timestamp ≤ at (blocks' timestamps never decrease). */
async function lastBlockAtOrBefore(
  client: ReturnType<typeof createPublicClient>,
  at: Date,
  upper: bigint,
): Promise<bigint> {
  const target = BigInt(Math.floor(at.getTime() / 1000));
  let low = 0n;
  let high = upper;
  const genesis = await client.getBlock({ blockNumber: 0n });
  if (genesis.timestamp > target) throw new UsageError("--at is before the chain's first block");
  while (low < high) {
    const middle = (low + high + 1n) / 2n;
    const block = await client.getBlock({ blockNumber: middle });
    if (block.timestamp <= target) low = middle;
    else high = middle - 1n;
  }
  return low;
}

/** The operator's off-chain registrations as JSON: [{id, chainId, contract, action, createdAt}]. */
async function readOffchainFile(path: string): Promise<OffchainRegistration[]> {
  const parsed: unknown = JSON.parse(await readFile(path, "utf8"));
  if (!Array.isArray(parsed)) throw new UsageError(`--offchain ${path}: expected a JSON array`);
  return parsed.map((item, index) => {
    const record = item as Record<string, unknown>;
    const action = record.action;
    if (
      (typeof record.id !== "string" && typeof record.id !== "number") ||
      typeof record.chainId !== "number" ||
      typeof record.contract !== "string" ||
      (action !== "register" && action !== "unregister") ||
      typeof record.createdAt !== "string"
    ) {
      throw new UsageError(
        `--offchain ${path}: entry ${index} needs id, chainId, contract, action (register|unregister), createdAt`,
      );
    }
    return {
      id: record.id,
      chainId: record.chainId,
      contract: record.contract.toLowerCase() as Hex,
      action,
      createdAt: new Date(record.createdAt),
    };
  });
}

function parseFormat(value: string | undefined): AuditFormat {
  const format = value ?? "json";
  if (!(AUDIT_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format expects ${AUDIT_FORMATS.join(" or ")}, got "${format}"`);
  }
  return format as AuditFormat;
}

export function registerAuditCommands(program: Command, signal: AbortSignal): void {
  const audit = program
    .command("audit")
    .description("Recompute and check what Quasar pins, trusting as little of it as you choose");

  const replay = audit
    .command("replay")
    .description(
      "Recompute one chain's desired set with the reconciler's derivation, from Quasar's database or (--rpc) straight from the chain's logs. Prints the set on stdout and a digest line on stderr.",
    )
    .option("--chain <id>", "chain id (required when several chains are configured)")
    .option(
      "--to-block <n>",
      "replay as of this block: later events ignored, nothing above it final",
    )
    .option(
      "--from-block <n>",
      "first block to read logs from (--rpc; default: the chain's startBlock)",
    )
    .option("--at <time>", "replay as of this instant (ISO 8601 or Unix seconds)")
    .option("--rpc <url>", "read the chain's logs from this RPC instead of Quasar's database")
    .option("--registry <address>", "registry address for --rpc (default: the configured one)")
    .option("--offchain <file>", "JSON list of the operator's off-chain registrations (--rpc)")
    .option("--include-optimistic", "include optimistic uploads (database replay only)")
    .option("--format <format>", "json or csv", "json")
    .option("--digest-only", "print only the digest line, on stdout");
  addSettingOptions(replay, { hidden: true }).action(
    async (options: ReplayOptions & Record<string, unknown>) => {
      const format = parseFormat(options.format);
      const env = applySettingFlags(options, commandEnvironment(process.env, process.cwd()));
      const { result, source } = await runReplay(options, env, signal);
      if (options.digestOnly) {
        process.stdout.write(`${digestLine(result)}\n`);
        return;
      }
      process.stdout.write(
        format === "csv"
          ? entriesToCsv(result.entries)
          : `${JSON.stringify(replayToJson(result, source), null, 2)}\n`,
      );
      process.stderr.write(`${digestLine(result)}\n`);
    },
  );

  const verify = audit
    .command("verify")
    .description(
      "Compare the desired set with each backend's real pins: missing, extra-but-ours, foreign. Exit 1 when anything desired is missing.",
    )
    .option("--sample <k>", "also check K random desired CIDs block by block on each backend")
    .option("--json", "print JSON");
  addSettingOptions(verify, { hidden: true }).action(
    async (options: { sample?: string; json?: boolean } & Record<string, unknown>) => {
      const env = applySettingFlags(options, commandEnvironment(process.env, process.cwd()));
      process.exitCode = await runAuditVerify(options, env, signal);
    },
  );

  const log = audit
    .command("log")
    .description("The reconcile log: every pin and unpin, why, and its outcome")
    .option("--cid <cid>", "only this CID (any spelling)")
    .option("--since <time>", "from this instant (ISO 8601 or Unix seconds)")
    .option("--until <time>", "up to this instant")
    .option("--limit <n>", "at most this many rows (newest first)", "100")
    .option("--json", "print JSON lines");
  addSettingOptions(log, { hidden: true }).action(
    async (
      options: {
        cid?: string;
        since?: string;
        until?: string;
        limit: string;
        json?: boolean;
      } & Record<string, unknown>,
    ) => {
      const env = applySettingFlags(options, commandEnvironment(process.env, process.cwd()));
      await runAuditLog(options, env);
    },
  );
}
