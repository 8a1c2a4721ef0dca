import { type Kysely, sql } from "kysely";
import type { Database } from "../database.js";

/** Uploads recorded for one uploader (an API key id, a client address or "anonymous"). */
export type UploaderUsage = {
  uploader: string;
  uploads: number;
  bytes: bigint;
  /** Uploads still desired (their TTL has not run out). */
  live: number;
  lastUploadAt: Date;
};

/**
 * Uploads per uploader, most uploads first: the usage an operator sees per API key. Reads
 * optimistic_pin, the one record of every upload; `schema` is QUASAR_RECONCILER_SCHEMA.
 */
export async function uploadsByUploader(
  db: Kysely<Database>,
  schema: string,
): Promise<UploaderUsage[]> {
  const rows = await db
    .withSchema(schema)
    .selectFrom("optimistic_pin")
    .select([
      "uploader",
      sql<string>`count(*)::text`.as("uploads"),
      sql<string>`coalesce(sum(size), 0)::text`.as("bytes"),
      sql<string>`count(*) filter (where expires_at > now())::text`.as("live"),
      sql<Date>`max(created_at)`.as("last"),
    ])
    .groupBy("uploader")
    .orderBy(sql`count(*)`, "desc")
    .orderBy("uploader")
    .execute();
  return rows.map((row) => ({
    uploader: row.uploader,
    uploads: Number(row.uploads),
    bytes: BigInt(row.bytes),
    live: Number(row.live),
    lastUploadAt: new Date(row.last),
  }));
}
