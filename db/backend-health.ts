import { type Kysely, sql } from "kysely";
import type { Database } from "./database.js";

export type BackendHealthRecord = {
  backendId: string;
  /** Masked connection string. */
  label: string;
  up: boolean;
  lastError: string | null;
  /** When `up` last changed. */
  since: Date;
};

/** Upserts every backend's health, stamped with the database clock. */
export async function recordBackendHealth(
  db: Kysely<Database>,
  schema: string,
  records: readonly BackendHealthRecord[],
): Promise<void> {
  if (records.length === 0) return;
  await healthDb(db, schema)
    .insertInto("backend_health")
    .values(
      records.map((r) => ({
        backend_id: r.backendId,
        label: r.label,
        up: r.up,
        last_error: r.lastError,
        since: r.since,
        reported_at: sql<Date>`now()`,
      })),
    )
    .onConflict((oc) =>
      oc.column("backend_id").doUpdateSet((eb) => ({
        label: eb.ref("excluded.label"),
        up: eb.ref("excluded.up"),
        last_error: eb.ref("excluded.last_error"),
        since: eb.ref("excluded.since"),
        reported_at: eb.ref("excluded.reported_at"),
      })),
    )
    .execute();
}

/** Every backend's last report, with its age in seconds by the database clock. */
export async function readBackendHealth(
  db: Kysely<Database>,
  schema: string,
): Promise<(BackendHealthRecord & { reportAgeSeconds: number })[]> {
  const rows = await healthDb(db, schema)
    .selectFrom("backend_health")
    .select([
      "backend_id",
      "label",
      "up",
      "last_error",
      "since",
      sql<string>`extract(epoch from now() - reported_at)::text`.as("age"),
    ])
    .orderBy("backend_id")
    .execute();
  return rows.map((r) => ({
    backendId: r.backend_id,
    label: r.label,
    up: r.up,
    lastError: r.last_error,
    since: r.since,
    reportAgeSeconds: Math.max(0, Math.round(Number(r.age))),
  }));
}

/** Any database over the shared Postgres, scoped to the reconciler schema that holds the table. */
function healthDb(db: Kysely<Database>, schema: string): Kysely<Database> {
  return db.withSchema(schema);
}
