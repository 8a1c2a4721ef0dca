import type { Kysely } from "kysely";
import type { Database } from "../database.js";

/**
 * Live Pinning Service API requests per CID among `cids` (normalised), every key together:
 * the desired step's input for the `psa` reason. CIDs without a request are absent.
 */
export async function psaRequestCounts(
  db: Kysely<Database>,
  schema: string,
  cids: readonly string[],
): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (cids.length === 0) return out;
  const rows = await db
    .withSchema(schema)
    .selectFrom("psa_request")
    .select(["cid", (eb) => eb.fn.countAll<bigint | string>().as("n")])
    .where("cid", "=", (eb) => eb.fn.any(eb.val([...cids])))
    .groupBy("cid")
    .execute();
  for (const row of rows) out.set(row.cid, Number(row.n));
  return out;
}
