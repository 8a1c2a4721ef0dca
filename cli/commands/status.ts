import type { Command } from "commander";
import { sql } from "kysely";
import { createPublicClient, http } from "viem";
import type { ChainConfig } from "@/core/config/schema.js";
import { describeError } from "@/core/errors.js";
import { indexerLag } from "@/core/indexer-lag.js";
import { createReadModel } from "@/db/read-model/index.js";
import { openDatabase, toJson } from "../common.js";
import { commandEnvironment } from "../dev-env.js";
import { maskUrl } from "../mask.js";
import { resolveConfig } from "../settings.js";
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
  desired: Record<"desired" | "confirmed" | "pending" | "optimistic" | "demoted", number> | null;
  backends: {
    backendId: string;
    label: string;
    pinned: number;
    queued: number;
    failed: number;
    /** Seconds the oldest pin still wanted but not pinned has waited; 0 when none. */
    lagSeconds: number;
  }[];
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
      const result = await sql<Record<string, string>>`select
          count(*)::text as desired,
          count(*) filter (where is_confirmed)::text as confirmed,
          count(*) filter (where is_pending)::text as pending,
          count(*) filter (where is_optimistic)::text as optimistic,
          count(*) filter (where is_demoted)::text as demoted
        from ${sql.ref(`${schema}.desired_cid`)}`.execute(db);
      const counts = result.rows[0] ?? {};
      desired = {
        desired: Number(counts.desired ?? 0),
        confirmed: Number(counts.confirmed ?? 0),
        pending: Number(counts.pending ?? 0),
        optimistic: Number(counts.optimistic ?? 0),
        demoted: Number(counts.demoted ?? 0),
      };
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
      const result = await sql<{
        backend_id: string;
        pinned: string;
        queued: string;
        failed: string;
        lag: string | null;
      }>`select backend_id,
          count(*) filter (where status = 'pinned')::text as pinned,
          count(*) filter (where status in ('queued', 'pinning'))::text as queued,
          count(*) filter (where status = 'failed')::text as failed,
          extract(epoch from now() - min(first_queued_at)
            filter (where status in ('queued', 'pinning', 'failed')))::text as lag
        from ${sql.ref(`${schema}.pin_ledger`)} group by backend_id order by backend_id`.execute(
        db,
      );
      for (const row of result.rows) {
        backends.push({
          backendId: row.backend_id,
          label: labels.get(row.backend_id) ?? row.backend_id,
          pinned: Number(row.pinned),
          queued: Number(row.queued),
          failed: Number(row.failed),
          lagSeconds: row.lag === null ? 0 : Math.round(Number(row.lag)),
        });
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
    return { chains, desired, backends, problems };
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
  for (const problem of report.problems) lines.push(`! ${problem}`);
  return `${lines.join("\n")}\n`;
}

export function registerStatusCommand(program: Command, _signal: AbortSignal): void {
  program
    .command("status")
    .description(
      "Per chain head, indexed and finalized block; desired, pending, optimistic and demoted counts; per backend pinned, queued, failed and lag",
    )
    .option("--json", "print JSON for scripts")
    .action(async (options: { json?: boolean }) => {
      const report = await collectStatus(commandEnvironment(process.env, process.cwd()));
      process.stdout.write(options.json ? `${toJson(report)}\n` : formatStatus(report));
    });
}
