import type { Command } from "commander";
import { createPublicClient, http } from "viem";
import type { ChainConfig } from "@/core/config/schema.js";
import { describeError } from "@/core/errors.js";
import { indexerLag } from "@/core/indexer-lag.js";
import { readBackendHealth } from "@/db/backend-health.js";
import { countDesired, type DesiredCounts } from "@/db/desired/index.js";
import { type BackendLedgerSummary, backendSummaries } from "@/db/ledger/reads.js";
import { createReadModel } from "@/db/read-model/index.js";
import { openDatabase, toJson } from "../common.js";
import { commandEnvironment } from "../dev-env.js";
import { maskUrl } from "../mask.js";
import { addSettingOptions, applySettingFlags, resolveConfig } from "../settings.js";
import { formatTable } from "../table.js";

/** `quasar status`: one snapshot of every part, read from the chains and the database. */
export type StatusReport = {
  chains: {
    chainId: number;
    rpc: string;
    head: bigint | null;
    indexedBlock: bigint | null;
    finalizedBlock: bigint | null;
    /** head − indexed; null when either is unknown. */
    lagBlocks: number | null;
    /** More than QUASAR_INDEXER_MAX_LAG_BLOCKS behind the head. */
    behind: boolean;
    error?: string;
  }[];
  desired: DesiredCounts | null;
  backends: (BackendLedgerSummary & { label: string })[];
  /** Each backend up or down as the reconciler last reported it; null when unreadable. */
  backendHealth: BackendHealthLine[] | null;
  /** What could not be read (database down, reconciler never ran…). */
  problems: string[];
};

const RPC_TIMEOUT_MS = 3_000;

export async function collectStatus(
  env: Readonly<Record<string, string | undefined>>,
): Promise<StatusReport> {
  const { config } = resolveConfig(env);
  const problems: string[] = [];
  const db = openDatabase(config, "quasar-status");
  try {
    let progress: { chainId: number; indexedBlock: bigint; finalizedBlock: bigint }[] = [];
    try {
      progress = await createReadModel({ db, schema: config.QUASAR_INDEXER_SCHEMA }).progress();
    } catch (error) {
      problems.push(`indexer: ${describeError(error)}`);
    }
    const chains = await Promise.all(
      (config.QUASAR_CHAINS as ChainConfig[]).map(async (chain) => {
        const indexed = progress.find((item) => item.chainId === chain.id);
        const row: StatusReport["chains"][number] = {
          chainId: chain.id,
          rpc: maskUrl(chain.rpc),
          head: null,
          indexedBlock: indexed?.indexedBlock ?? null,
          finalizedBlock: indexed?.finalizedBlock ?? null,
          lagBlocks: null,
          behind: false,
        };
        try {
          const client = createPublicClient({
            transport: http(chain.rpc, { timeout: RPC_TIMEOUT_MS, retryCount: 0 }),
          });
          row.head = await client.getBlockNumber({ cacheTime: 0 });
        } catch (error) {
          row.error = `rpc: ${describeError(error).split("\n")[0]}`;
        }
        const lag = indexerLag(
          chain.id,
          row.head,
          row.indexedBlock,
          config.QUASAR_INDEXER_MAX_LAG_BLOCKS,
        );
        row.lagBlocks = lag.lagBlocks;
        row.behind = lag.behind;
        if (lag.behind)
          problems.push(
            `indexer: chain ${chain.id} is ${lag.lagBlocks} blocks behind its head (more than QUASAR_INDEXER_MAX_LAG_BLOCKS=${config.QUASAR_INDEXER_MAX_LAG_BLOCKS})`,
          );
        return row;
      }),
    );

    const schema = config.QUASAR_RECONCILER_SCHEMA;
    let desired: StatusReport["desired"] = null;
    try {
      desired = await countDesired(db, schema);
    } catch (error) {
      problems.push(`desired set: ${describeError(error)}`);
    }

    const labels = new Map<string, string>();
    try {
      const { parseBackends } = await import("@/backends/index.js");
      for (const backend of parseBackends(config.QUASAR_BACKENDS))
        labels.set(backend.id, backend.label);
    } catch (error) {
      problems.push(`backends: ${describeError(error)}`);
    }
    const backends: StatusReport["backends"] = [];
    try {
      for (const { backendId, ...counts } of await backendSummaries(db, schema)) {
        backends.push({ backendId, label: labels.get(backendId) ?? backendId, ...counts });
      }
    } catch (error) {
      problems.push(`ledger: ${describeError(error)}`);
    }
    // Configured backends with no ledger row yet still belong in the table.
    for (const [id, label] of labels) {
      if (!backends.some((backend) => backend.backendId === id)) {
        backends.push({ backendId: id, label, pinned: 0, queued: 0, failed: 0, lagSeconds: 0 });
      }
    }
    const backendHealth = await collectBackendHealth(db, schema, problems);
    return { chains, desired, backends, backendHealth, problems };
  } finally {
    await db.destroy();
  }
}

const show = (value: bigint | number | null | undefined) =>
  value === null || value === undefined ? "-" : value.toString();

export function formatStatus(report: StatusReport): string {
  const lines: string[] = [];
  lines.push(
    formatTable(
      ["CHAIN", "HEAD", "INDEXED", "FINALIZED", "RPC"],
      report.chains.map((chain) => [
        String(chain.chainId),
        show(chain.head),
        show(chain.indexedBlock),
        show(chain.finalizedBlock),
        chain.error ? `${chain.rpc} (${chain.error})` : chain.rpc,
      ]),
    ),
  );
  lines.push("");
  const desired = report.desired;
  lines.push(
    desired
      ? `desired ${desired.desired}  (confirmed ${desired.confirmed}, pending ${desired.pending}, optimistic ${desired.optimistic}, demoted ${desired.demoted})`
      : "desired -",
  );
  lines.push("");
  lines.push(
    formatTable(
      ["BACKEND", "PINNED", "QUEUED", "FAILED", "LAG"],
      report.backends.map((backend) => [
        backend.label,
        String(backend.pinned),
        String(backend.queued),
        String(backend.failed),
        `${backend.lagSeconds}s`,
      ]),
    ),
  );
  if (report.backendHealth) lines.push("", formatBackendHealth(report.backendHealth));
  for (const problem of report.problems) lines.push(`! ${problem}`);
  return `${lines.join("\n")}\n`;
}

/** One backend's health as `quasar status` shows it. */
export type BackendHealthLine = {
  backendId: string;
  /** Masked connection string. */
  label: string;
  /** "unknown" when the reconciler has not reported for a while (it is not running). */
  state: "up" | "down" | "unknown";
  /** Why it was last down; masked like every backend error (labels, never secrets). */
  lastError: string | null;
  /** Seconds since up/down last changed. */
  forSeconds: number;
  /** Seconds since the reconciler's last report. */
  reportedSecondsAgo: number;
};

/** A report older than this means the reconciler is not running: the state is unknown. */
const HEALTH_STALE_SECONDS = 60;

/** Reads the reconciler's backend_health reports; a failure becomes a problem line. */
async function collectBackendHealth(
  db: ReturnType<typeof openDatabase>,
  schema: string,
  problems: string[],
): Promise<BackendHealthLine[] | null> {
  try {
    const records = await readBackendHealth(db, schema);
    if (records.length === 0) problems.push("backend health: the reconciler has not reported yet");
    const reportedAt = Date.now();
    return records.map((record) => ({
      backendId: record.backendId,
      label: record.label,
      state: record.reportAgeSeconds > HEALTH_STALE_SECONDS ? "unknown" : record.up ? "up" : "down",
      lastError: record.lastError,
      forSeconds: Math.max(0, Math.round((reportedAt - record.since.getTime()) / 1_000)),
      reportedSecondsAgo: record.reportAgeSeconds,
    }));
  } catch (error) {
    problems.push(`backend health: ${describeError(error)}`);
    return null;
  }
}

export function formatBackendHealth(lines: readonly BackendHealthLine[]): string {
  return formatTable(
    ["BACKEND", "STATE", "FOR", "LAST ERROR"],
    lines.map((line) => [
      line.label,
      line.state === "unknown"
        ? `unknown (last report ${line.reportedSecondsAgo}s ago)`
        : line.state,
      `${line.forSeconds}s`,
      line.lastError ?? "-",
    ]),
  );
}

export function registerStatusCommand(program: Command, _signal: AbortSignal): void {
  addSettingOptions(
    program
      .command("status")
      .description(
        "Per chain head, indexed and finalized block; desired, pending, optimistic and demoted counts; per backend pinned, queued, failed and lag",
      )
      .option("--json", "print JSON for scripts"),
    { hidden: true },
  ).action(async (options: Record<string, unknown>) => {
    const report = await collectStatus(
      applySettingFlags(options, commandEnvironment(process.env, process.cwd())),
    );
    process.stdout.write(options.json === true ? `${toJson(report)}\n` : formatStatus(report));
  });
}
