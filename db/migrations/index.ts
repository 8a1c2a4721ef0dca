import { type Kysely, type Migration, type MigrationResultSet, Migrator } from "kysely";
import { NonRetryableError } from "@/core/errors.js";
import { desiredMigration } from "./0001_desired.js";
import { ledgerMigration } from "./0002_ledger.js";
import { desiredUsesTailMigration } from "./0003_desired_uses_tail.js";
import { apiRateLimitMigration } from "./0004_api_rate_limit.js";
import { backendHealthMigration } from "./0005_backend_health.js";

/**
 * The reconciler schema's migrations, in order. Add a migration by writing
 * `NNNN_<name>.ts` (exporting a kysely `Migration`) and one line here; names sort in the
 * order they run, and a name once released never changes.
 */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  "0001_desired": desiredMigration,
  "0002_ledger": ledgerMigration,
  "0003_desired_uses_tail": desiredUsesTailMigration,
  "0004_api_rate_limit": apiRateLimitMigration,
  "0005_backend_health": backendHealthMigration,
};

/** Raised when a migration fails; the database is left at the last migration that succeeded. */
export class MigrationError extends NonRetryableError {
  override name = "MigrationError";
  constructor(
    readonly migration: string | undefined,
    options: { cause: unknown },
  ) {
    super(`reconciler migration ${migration ?? "(unknown)"} failed`, {
      ...options,
      details: "fix the cause and restart; migrations that succeeded before it stay applied",
    });
  }
}

/**
 * Brings the reconciler schema to the latest migration (creating the schema if needed).
 * Safe to run concurrently from several processes: kysely's migrator takes a lock table.
 */
export async function migrateToLatest<Tables>(
  db: Kysely<Tables>,
  schema: string,
): Promise<MigrationResultSet> {
  await db.schema.createSchema(schema).ifNotExists().execute();
  const migrator = new Migrator({
    db: db.withSchema(schema),
    provider: { getMigrations: async () => ({ ...MIGRATIONS }) },
    migrationTableSchema: schema,
  });
  let result = await migrator.migrateToLatest();
  // kysely checks for its tables by introspecting the whole catalog; a table another
  // process drops at that moment (tests create and drop schemas all the time) fails the
  // check with undefined_table or invalid_schema_name. Nothing was applied then (each migration is transactional):
  // try again.
  for (let attempt = 1; attempt < 8 && isCatalogRace(result); attempt++) {
    await new Promise((resolve) => setTimeout(resolve, 50 * attempt));
    result = await migrator.migrateToLatest();
  }
  if (result.error !== undefined) {
    const failed = result.results?.find((item) => item.status === "Error");
    throw new MigrationError(failed?.migrationName, { cause: result.error });
  }
  return result;
}

function isCatalogRace(result: MigrationResultSet): boolean {
  const { error } = result;
  return (
    typeof error === "object" &&
    error !== null &&
    // undefined_table, invalid_schema_name: a relation or schema vanished mid-query.
    ["42P01", "3F000"].includes(String((error as { code?: unknown }).code)) &&
    // A migration's own SQL failing is a real error, never retried.
    !(result.results ?? []).some((item) => item.status === "Error")
  );
}
