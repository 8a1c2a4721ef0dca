import { type Kysely, sql } from "kysely";
import {
  chainAction,
  contractKey,
  insertAction,
  offchainAction,
  type RegistrationAction,
} from "@/core/desired/timeline.js";
import type { Hex } from "@/src/events.js";
import type { Database } from "../database.js";

/**
 * Loaders for the persisted fold state (the finalized prefix), in batches. `db` is already
 * bound to the reconciler schema.
 */
type Db = Kysely<Database>;

/** A (chainId, contract) pair. */
export type ContractId = { chainId: number; contract: Hex };

export function parseContractKey(key: string): ContractId {
  const separator = key.indexOf(":");
  return { chainId: Number(key.slice(0, separator)), contract: key.slice(separator + 1) as Hex };
}

/** `(chain_id, contract) in (…)` for a list of contract keys, as one array-parameter join. */
function contractsIn(keys: readonly string[]) {
  const ids = keys.map(parseContractKey);
  return sql<boolean>`(chain_id, contract) in (select * from unnest(${sql.val(ids.map((id) => String(id.chainId)))}::bigint[], ${sql.val(ids.map((id) => id.contract))}::text[]))`;
}

/**
 * The merged registration timelines (final chain events + off-chain registrations) of the
 * given contracts, sorted; contracts with none get an empty timeline.
 */
export async function loadTimelines(
  db: Db,
  keys: readonly string[],
): Promise<Map<string, RegistrationAction[]>> {
  const timelines = new Map<string, RegistrationAction[]>(keys.map((key) => [key, []]));
  if (keys.length === 0) return timelines;
  // One round trip for both sources; off-chain rows carry their id and creation time.
  const rows = await db
    .selectFrom("registration_event")
    .select([
      "event_id",
      sql<string | null>`null`.as("offchain_id"),
      "chain_id",
      "contract",
      "action",
      "block_number",
      "block_timestamp",
      "transaction_hash",
      sql<Date | null>`null::timestamptz`.as("created_at"),
    ])
    .where(contractsIn(keys))
    .unionAll(
      db
        .selectFrom("offchain_registration")
        .select([
          sql<string>`''`.as("event_id"),
          sql<string | null>`id::text`.as("offchain_id"),
          "chain_id",
          "contract",
          "action",
          sql<string>`null::int8`.as("block_number"),
          sql<string>`null::int8`.as("block_timestamp"),
          sql<string>`null::text`.as("transaction_hash"),
          "created_at",
        ])
        .where(contractsIn(keys)),
    )
    .execute();
  for (const row of rows) {
    const action =
      row.offchain_id === null
        ? chainAction({
            id: row.event_id,
            chainId: Number(row.chain_id),
            subject: row.contract as Hex,
            kind: row.action,
            blockNumber: BigInt(row.block_number),
            blockTimestamp: BigInt(row.block_timestamp),
            transactionHash: row.transaction_hash as Hex,
          })
        : offchainAction({
            id: BigInt(row.offchain_id),
            chainId: Number(row.chain_id),
            contract: row.contract as Hex,
            action: row.action,
            createdAt: new Date(row.created_at ?? 0),
          });
    const timeline = timelines.get(contractKey(action.chainId, action.contract));
    if (timeline) insertAction(timeline, action);
  }
  return timelines;
}

/**
 * One page of the CIDs with a persisted PinHash ref from one contract, after `after` in
 * bytewise order (pin_ref_contract_idx): a contract may hold millions, and one statement over
 * all of them would outlast the statement timeout.
 */
export async function cidsOfContractPage(
  db: Db,
  key: string,
  after: string | null,
  limit: number,
): Promise<string[]> {
  const { chainId, contract } = parseContractKey(key);
  let query = db
    .selectFrom("pin_ref")
    .select("cid")
    .distinct()
    .where("chain_id", "=", String(chainId))
    .where("contract", "=", contract);
  if (after !== null) query = query.where("cid", ">", after);
  return (await query.orderBy("cid").limit(limit).execute()).map((row) => row.cid);
}
