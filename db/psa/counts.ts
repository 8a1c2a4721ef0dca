import { type RawBuilder, sql } from "kysely";

/**
 * Live Pinning Service API requests for the CID in `cid` (a column of the enclosing query,
 * normalised), every key together, as a scalar subquery: the desired step's input for the
 * `psa` reason, read in the same statement as the CID's other inputs.
 */
export function psaRequestCountOf(schema: string, cid: RawBuilder<unknown>) {
  return sql<bigint>`(select count(*) from ${sql.id(schema, "psa_request")} where cid = ${cid})`;
}
