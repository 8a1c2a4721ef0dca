import type { Kysely } from "kysely";
import { createPublicClient, http } from "viem";
import type { ChainConfig, QuasarConfig } from "@/core/config/schema.js";
import { describeError } from "@/core/errors.js";
import { indexerLag } from "@/core/indexer-lag.js";
import { maskUrl } from "@/core/mask.js";
import { readBackendHealth } from "@/db/backend-health.js";
import type { Database } from "@/db/database.js";
import { countDesired, type DesiredCounts } from "@/db/desired/index.js";
import { type BackendLedgerSummary, backendSummaries } from "@/db/ledger/reads.js";
import { createReadModel } from "@/db/read-model/index.js";

/**
 * One snapshot of every part, read from the chains and the database: what `quasar status`
 * prints and what the dashboard's overview shows, from this one function so the two can
 * never disagree.
 */
export type StatusReport = {
  chains: {
    chainId: number;
    /** The chain's first RPC URL, masked. */
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

export type CollectStatusReportParams = {
  config: QuasarConfig;
  /** Quasar's database; the caller owns it. */
  db: Kysely<Database>;
  /** Configured backends (id → masked label), in configuration order. */
  labels: ReadonlyMap<string, string>;
  /** Problems found before (e.g. backends that could not be parsed); the report appends. */
  problems?: string[];
};

const RPC_TIMEOUT_MS = 3_000;
/** A report older than this means the reconciler is not running: the state is unknown. */
const HEALTH_STALE_SECONDS = 60;

export async function collectStatusReport(
  params: CollectStatusReportParams,
): Promise<StatusReport> {
  const { config, db, labels } = params;
  const problems = params.problems ?? [];
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
        // viem's message names the URL: mask it like the rpc field.
        row.error = `rpc: ${describeError(error).split("\n")[0]?.replaceAll(chain.rpc, row.rpc)}`;
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
      backends.push({
        backendId: id,
        label,
        pinned: 0,
        pinning: 0,
        queued: 0,
        failed: 0,
        lagSeconds: 0,
      });
    }
  }
  const backendHealth = await collectBackendHealth(db, schema, problems);
  return { chains, desired, backends, backendHealth, problems };
}

/** Reads the reconciler's backend_health reports; a failure becomes a problem line. */
async function collectBackendHealth(
  db: Kysely<Database>,
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
