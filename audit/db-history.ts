import type { Kysely } from "kysely";
import type { OptimisticPin } from "@/core/desired/derive.js";
import type { OffchainRegistration } from "@/core/desired/timeline.js";
import type { Database } from "@/db/database.js";
import { isMissingRelation } from "@/db/errors.js";
import { createReadModel } from "@/db/read-model/index.js";
import { listOffchainRegistrations } from "@/db/registrations.js";
import { listOptimisticPins } from "@/db/uploads/index.js";
import type { ChainEvent } from "@/src/events.js";
import { ReplayInputError } from "./errors.js";

/**
 * One chain's history as Quasar's database holds it: the indexer's events (through the
 * read model), the indexer's finality, and the reconciler's off-chain registrations and
 * optimistic uploads (absent before the reconciler has created its tables).
 */
export type DatabaseHistory = {
  events: ChainEvent[];
  indexedBlock: bigint;
  finalizedBlock: bigint;
  offchainRegistrations: OffchainRegistration[];
  optimisticPins: OptimisticPin[];
};

export type ReadDatabaseHistoryParams = {
  db: Kysely<Database>;
  indexerSchema: string;
  reconcilerSchema: string;
  chainId: number;
  /** Page size of event reads. Default 5,000. */
  pageSize?: number;
  signal?: AbortSignal;
  /** Called after each page with blocks read so far and the blocks to read. */
  onProgress?: (blocksDone: number, blocksTotal: number) => void;
};

export async function readDatabaseHistory(
  params: ReadDatabaseHistoryParams,
): Promise<DatabaseHistory> {
  const readModel = createReadModel({ db: params.db, schema: params.indexerSchema });
  const progress = (await readModel.progress()).find((chain) => chain.chainId === params.chainId);
  if (!progress) {
    throw new ReplayInputError(`the indexer has no progress for chain ${params.chainId}`, {
      details: "check --chain, QUASAR_CHAINS and that the indexer has started on this schema",
    });
  }
  // Pages by block range per chain: the read model's id order spans every chain.
  const pageBlocks = BigInt(params.pageSize ?? 5_000);
  const events: ChainEvent[] = [];
  for (let from = 0n; from <= progress.indexedBlock; from += pageBlocks) {
    params.signal?.throwIfAborted();
    const to = from + pageBlocks - 1n;
    events.push(...(await readModel.eventsInBlocks(params.chainId, from, to)));
    const total = progress.indexedBlock + 1n;
    params.onProgress?.(Number(to + 1n < total ? to + 1n : total), Number(total));
  }
  // Rows above the indexed block belong to a block Ponder has not finished: leave them out.
  const complete = events.filter((event) => event.blockNumber <= progress.indexedBlock);

  const offchainRegistrations = await optionalRows(async () =>
    (
      await listOffchainRegistrations(params.db, {
        schema: params.reconcilerSchema,
        chainId: params.chainId,
      })
    ).map(
      (row): OffchainRegistration => ({
        id: String(row.id),
        chainId: row.chainId,
        contract: row.contract,
        action: row.action,
        createdAt: row.createdAt,
      }),
    ),
  );
  const optimisticPins = await optionalRows(() =>
    listOptimisticPins(params.db, params.reconcilerSchema),
  );

  return {
    events: complete,
    indexedBlock: progress.indexedBlock,
    finalizedBlock: progress.finalizedBlock,
    offchainRegistrations,
    optimisticPins,
  };
}

/** Rows of a reconciler table, or none when the reconciler has not created it yet. */
async function optionalRows<T>(query: () => Promise<T[]>): Promise<T[]> {
  try {
    return await query();
  } catch (error) {
    if (isMissingRelation(error)) return [];
    throw error;
  }
}
