import { type Kysely, type Migration, type MigrationResultSet, Migrator } from "kysely";
import { NonRetryableError } from "@/core/errors.js";
import type { Database } from "../database.js";
import { isMissingRelation } from "../errors.js";
import { desiredMigration } from "./0001_desired.js";
import { ledgerMigration } from "./0002_ledger.js";
import { desiredUsesTailMigration } from "./0003_desired_uses_tail.js";
import { apiRateLimitMigration } from "./0004_api_rate_limit.js";
import { backendHealthMigration } from "./0005_backend_health.js";
import { ledgerCopiesMigration } from "./0006_ledger_copies.js";
import { psaMigration } from "./0007_psa.js";
import { desiredWakeupMigration } from "./0008_desired_wakeup.js";
import type { SchemaMigration } from "./schema-migration.js";

/**
 * The reconciler schema's migrations, in order. Add a migration by writing
 * `NNNN_<name>.ts` (exporting a kysely `Migration`, or a `SchemaMigration` when its SQL names
 * the schema itself) and one line here; names sort in the order they run, and a name once
 * released never changes.
 */
export const MIGRATIONS: Readonly<Record<string, Migration | SchemaMigration>> = {
  "0001_desired": desiredMigration,
  "0002_ledger": ledgerMigration,
  "0003_desired_uses_tail": desiredUsesTailMigration,
  "0004_api_rate_limit": apiRateLimitMigration,
  "0005_backend_health": backendHealthMigration,
  "0006_ledger_copies": ledgerCopiesMigration,
  "0007_psa": psaMigration,
  "0008_desired_wakeup": desiredWakeupMigration,
};

function migrationsFor(schema: string): Record<string, Migration> {
  return Object.fromEntries(
    Object.entries(MIGRATIONS).map(([name, migration]) => [
      name,
      typeof migration === "function" ? migration(schema) : migration,
    ]),
  );
}

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

/** Attempts before a catalog race (below) is reported as a failure. */
const MIGRATE_ATTEMPTS = 10;

/**
 * Brings the reconciler schema to the latest migration (creating the schema if needed): the
 * one migration entry of every process and test. Safe to run concurrently from several
 * processes: kysely's migrator takes a lock table.
 *
 * kysely checks for its tables by introspecting every schema's tables before taking its
 * lock; a schema or table another process drops at that moment (test suites create and drop
 * schemas all the time) fails the check with undefined_table or invalid_schema_name. Nothing
 * was applied then (each migration is transactional): that race, returned or thrown, is
 * retried with a growing pause; any other failure is not.
 */
export async function migrateToLatest(
  db: Kysely<Database>,
  schema: string,
): Promise<MigrationResultSet> {
  const migrator = new Migrator({
    db: db.withSchema(schema),
    provider: { getMigrations: async () => migrationsFor(schema) },
    migrationTableSchema: schema,
  });
  for (let attempt = 1; ; attempt++) {
    let result: MigrationResultSet;
    try {
      await db.schema.createSchema(schema).ifNotExists().execute();
      result = await migrator.migrateToLatest();
    } catch (error) {
      result = { error };
    }
    if (result.error === undefined) return result;
    if (attempt >= MIGRATE_ATTEMPTS || !isCatalogRace(result)) {
      const failed = result.results?.find((item) => item.status === "Error");
      throw new MigrationError(failed?.migrationName, { cause: result.error });
    }
    await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
  }
}

/** A relation or schema vanished under kysely's own catalog checks, not a migration failing. */
function isCatalogRace(result: MigrationResultSet): boolean {
  return (
    isMissingRelation(result.error) &&
    // A migration's own SQL failing is a real error, never retried.
    !(result.results ?? []).some((item) => item.status === "Error")
  );
}
