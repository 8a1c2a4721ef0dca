import { type Kysely, sql } from "kysely";
import type { PinRef } from "@/core/desired/evaluate.js";
import { type DesiredReasonJson, reasonFromJson } from "@/core/desired/reasons.js";
import type { Hex } from "@/src/events.js";
import type { Database } from "../database.js";
import { psaRequestCountOf } from "../psa/counts.js";
import { latestOptimisticExpiryOf } from "../uploads/record.js";
import { canonicalReasons } from "./decide.js";

/** What the rules need to judge a page of CIDs, besides the timelines of their contracts. */
export type PageInputs = {
  /** The persisted (final) PinHash refs, grouped by CID. */
  refs: Map<string, PinRef[]>;
  /** The latest expiry of each CID's uploads; absent without one. */
  optimistic: Map<string, Date>;
  /** Live Pinning Service API requests per CID; absent without one. */
  psa: Map<string, number>;
  /** The stored answer (canonical reasons JSON) and whether it used the tail; absent when none. */
  stored: Map<string, { json: string; usesTail: boolean }>;
};

type Row = {
  cid: string;
  stored: boolean;
  reasons: DesiredReasonJson[] | null;
  uses_tail: boolean | null;
  expires_at: Date | null;
  psa: bigint | string;
  event_id: string | null;
  chain_id: bigint | null;
  contract: string | null;
  block_number: bigint | null;
  block_timestamp: bigint | null;
  transaction_hash: string | null;
};

/**
 * Reads a page of CIDs' inputs in one statement: a step is a handful of statements, and each
 * round trip through pg costs more than the index lookups it carries (four separate reads were
 * a quarter of an incremental step). One row per (CID, final ref), or one row for a CID
 * without refs; `reconcilerSchema` names the tables.
 */
export async function loadPageInputs(
  db: Kysely<Database>,
  reconcilerSchema: string,
  cids: readonly string[],
): Promise<PageInputs> {
  const inputs: PageInputs = {
    refs: new Map(),
    optimistic: new Map(),
    psa: new Map(),
    stored: new Map(),
  };
  if (cids.length === 0) return inputs;
  const table = (name: string) => sql.id(reconcilerSchema, name);
  const cid = sql.ref("c.cid");
  // No ORDER BY: the rules do not depend on the refs' order.
  const { rows } = await sql<Row>`select c.cid, d.cid is not null as stored, d.reasons, d.uses_tail,
      ${latestOptimisticExpiryOf(reconcilerSchema, cid)} as expires_at,
      ${psaRequestCountOf(reconcilerSchema, cid)} as psa,
      r.event_id, r.chain_id, r.contract, r.block_number, r.block_timestamp, r.transaction_hash
    from unnest(${[...cids]}::text[]) as c(cid)
    left join ${table("desired_cid")} as d on d.cid = c.cid
    left join ${table("pin_ref")} as r on r.cid = c.cid`.execute(db);
  for (const row of rows) {
    if (row.stored && !inputs.stored.has(row.cid)) {
      inputs.stored.set(row.cid, {
        json: canonicalReasons((row.reasons ?? []).map(reasonFromJson)),
        usesTail: row.uses_tail === true,
      });
    }
    if (row.expires_at !== null) inputs.optimistic.set(row.cid, new Date(row.expires_at));
    const psa = Number(row.psa);
    if (psa > 0) inputs.psa.set(row.cid, psa);
    if (row.event_id === null) continue;
    const ref: PinRef = {
      cid: row.cid,
      chainId: Number(row.chain_id),
      contract: row.contract as Hex,
      eventId: row.event_id,
      blockNumber: BigInt(row.block_number ?? 0n),
      blockTimestamp: BigInt(row.block_timestamp ?? 0n),
      transactionHash: row.transaction_hash as Hex,
    };
    const list = inputs.refs.get(row.cid);
    if (list) list.push(ref);
    else inputs.refs.set(row.cid, [ref]);
  }
  return inputs;
}
