import { type Kysely, sql } from "kysely";
import { isAddress } from "viem";
import type { RegistrationActionKind } from "@/core/desired/timeline.js";
import { NonRetryableError } from "@/core/errors.js";
import type { Database } from "./database.js";

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
export async function recordOffchainRegistration(
  trx: Kysely<Database>,
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
  const db = params.schema === undefined ? trx : trx.withSchema(params.schema);
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
export async function listOffchainRegistrations(
  db: Kysely<Database>,
  params: { schema?: string; chainId?: number; contract?: string } = {},
): Promise<OffchainRegistrationRecord[]> {
  const scoped = params.schema === undefined ? db : db.withSchema(params.schema);
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

/**
 * Registers a contract off-chain unless its latest off-chain action is already a register:
 * "created" or "existing". Registrations of one contract are serialised (an advisory lock
 * for the transaction), so two concurrent calls answer "created" once.
 */
export async function registerContractOnce(
  db: Kysely<Database>,
  params: Omit<RecordOffchainRegistrationParams, "action" | "schema"> & { schema: string },
): Promise<"created" | "existing"> {
  return db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`${params.schema}:${params.chainId}:${params.contract}`}))`.execute(
      trx,
    );
    const history = await listOffchainRegistrations(trx, {
      schema: params.schema,
      chainId: params.chainId,
      contract: params.contract,
    });
    if (history.at(-1)?.action === "register") return "existing" as const;
    await recordOffchainRegistration(trx, { ...params, action: "register" });
    return "created" as const;
  });
}

/** The contracts whose latest off-chain action is a register, with that registration. */
export async function activeOffchainRegistrations(
  db: Kysely<Database>,
  schema: string,
): Promise<OffchainRegistrationRecord[]> {
  const latest = new Map<string, OffchainRegistrationRecord>();
  for (const row of await listOffchainRegistrations(db, { schema })) {
    latest.set(`${row.chainId}:${row.contract}`, row);
  }
  return [...latest.values()].filter((row) => row.action === "register");
}
