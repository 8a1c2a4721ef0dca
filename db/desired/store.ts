import { checkCid } from "@/src/cid.js";
import { createReadModel } from "../read-model/index.js";
import {
  countDesired,
  earliestChangeAt,
  storedReasons,
  streamDesiredPages,
  streamDesiredText,
} from "./reads.js";
import { runStep } from "./step.js";
import type {
  CreateDesiredStoreParams,
  DesiredLag,
  DesiredStepResult,
  DesiredStore,
} from "./types.js";

/**
 * The persisted, incremental desired set over the reconciler schema (which must be migrated
 * first: db/migrations). See db/desired/types.ts for the contract.
 */
export function createDesiredStore(params: CreateDesiredStoreParams): DesiredStore {
  const root = params.db;
  const schema = params.reconcilerSchema;
  const db = root.withSchema(schema);
  const readModel = createReadModel({ db: root, schema: params.indexerSchema });
  const pages = (options: { signal?: AbortSignal } = {}) =>
    streamDesiredPages(root, schema, options);
  const bounded = async ({
    now,
    signal,
    maxChanges,
  }: {
    now: Date;
    signal?: AbortSignal | undefined;
    maxChanges: number;
  }): Promise<DesiredStepResult> => {
    signal?.throwIfAborted();
    return root.transaction().execute((trx) =>
      runStep({
        trx,
        indexerSchema: params.indexerSchema,
        reconcilerSchema: schema,
        ttlMs: params.ttlMs,
        now,
        maxChanges,
        ...(params.affectedInMemory === undefined
          ? {}
          : { affectedInMemory: params.affectedInMemory }),
        ...(signal ? { signal } : {}),
        ...(params.logger ? { logger: params.logger } : {}),
      }),
    );
  };

  return {
    async step({ now, signal }) {
      return (await bounded({ now, signal, maxChanges: Number.POSITIVE_INFINITY })).changes;
    },

    boundedStep: bounded,

    streamDesiredPages: pages,

    streamDesiredText: (options = {}) => streamDesiredText(root, schema, options),

    async *streamDesired(options = {}) {
      for await (const page of pages(options)) yield* page;
    },

    async reasonsFor(cid) {
      const check = checkCid(cid);
      if (!check.valid) return [];
      return (await storedReasons(root, schema, [check.cid])).get(check.cid) ?? [];
    },

    counts: () => countDesired(root, schema),

    nextChangeAt: () => earliestChangeAt(root, schema),

    async lag(): Promise<DesiredLag[]> {
      const progress = await readModel.progress();
      const cursors = new Map(
        (await db.selectFrom("desired_cursor").select(["chain_id", "folded_block"]).execute()).map(
          (row) => [Number(row.chain_id), BigInt(row.folded_block)],
        ),
      );
      return progress.map((chain) => ({
        chainId: chain.chainId,
        indexedBlock: chain.indexedBlock,
        finalizedBlock: chain.finalizedBlock,
        foldedBlock: cursors.get(chain.chainId) ?? -1n,
      }));
    },
  };
}
