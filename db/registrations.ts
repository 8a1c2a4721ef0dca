import type { Kysely, Transaction } from "kysely";
import { isAddress } from "viem";
import type { RegistrationActionKind } from "@/core/desired/timeline.js";
import { NonRetryableError } from "@/core/errors.js";
import type { DesiredTables } from "./desired/tables.js";

/**
 * Off-chain registrations: an operator's `POST /storageContracts`, recorded append-only.
 * The desired set treats each like a Register/Unregister of the chain's registry, final at
 * once and effective from its creation time (core/desired/timeline.ts).
 */
export type OffchainRegistrationRecord = {
  id: bigint;
  chainId: number;
  /** Lowercase. */
  contract: `0x${string}`;
  action: RegistrationActionKind;
  createdAt: Date;
  /** Who asked: an admin label, never a token. */
  actor: string;
};

export type RecordOffchainRegistrationParams = {
  /** QUASAR_RECONCILER_SCHEMA, unless `trx` is already bound to it with withSchema(). */
  schema?: string;
  chainId: number;
  /** Any case; stored lowercase. */
  contract: string;
  action: RegistrationActionKind;
  actor: string;
  now: Date;
};

/** The address or chain id is not acceptable; nothing was recorded. */
export class InvalidRegistrationError extends NonRetryableError {
  override name = "InvalidRegistrationError";
}

/**
 * Records an off-chain registration inside the caller's transaction and queues the
 * contract for the desired store's next step.
 */
export async function recordOffchainRegistration<Tables>(
  trx: Transaction<Tables> | Kysely<Tables>,
  params: RecordOffchainRegistrationParams,
): Promise<OffchainRegistrationRecord> {
  if (!isAddress(params.contract, { strict: false })) {
    throw new InvalidRegistrationError(`"${params.contract}" is not an address`, {
      details: "expected 0x followed by 40 hex digits (any case)",
    });
  }
  if (!Number.isSafeInteger(params.chainId) || params.chainId <= 0) {
    throw new InvalidRegistrationError(`chain id ${params.chainId} is not a positive integer`);
  }
  const contract = params.contract.toLowerCase() as `0x${string}`;
  let db = trx as unknown as Kysely<DesiredTables>;
  if (params.schema !== undefined) db = db.withSchema(params.schema);
  const row = await db
    .insertInto("offchain_registration")
    .values({
      chain_id: params.chainId,
      contract,
      action: params.action,
      created_at: params.now,
      actor: params.actor,
    })
    .returning("id")
    .executeTakeFirstOrThrow();
  await db
    .insertInto("desired_dirty_contract")
    .values({ chain_id: params.chainId, contract })
    .onConflict((c) => c.doNothing())
    .execute();
  return {
    id: BigInt(row.id),
    chainId: params.chainId,
    contract,
    action: params.action,
    createdAt: params.now,
    actor: params.actor,
  };
}

/** Every off-chain registration, oldest first, optionally of one chain or one contract. */
export async function listOffchainRegistrations<Tables>(
  db: Kysely<Tables>,
  params: { schema?: string; chainId?: number; contract?: string } = {},
): Promise<OffchainRegistrationRecord[]> {
  let scoped = db as unknown as Kysely<DesiredTables>;
  if (params.schema !== undefined) scoped = scoped.withSchema(params.schema);
  let query = scoped.selectFrom("offchain_registration").selectAll();
  if (params.chainId !== undefined) query = query.where("chain_id", "=", BigInt(params.chainId));
  if (params.contract !== undefined)
    query = query.where("contract", "=", params.contract.toLowerCase());
  const rows = await query.orderBy("id").execute();
  return rows.map((row) => ({
    id: BigInt(row.id),
    chainId: Number(row.chain_id),
    contract: row.contract as `0x${string}`,
    action: row.action,
    createdAt: new Date(row.created_at),
    actor: row.actor,
  }));
}
