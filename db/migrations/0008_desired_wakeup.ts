import { type Kysely, sql } from "kysely";
import { DESIRED_WAKEUP_CHANNEL } from "../desired/wakeup-channel.js";
import type { SchemaMigration } from "./schema-migration.js";

/**
 * Wakes the reconciler when the API queues work for the desired step. Every insert into
 * desired_dirty_cid or desired_dirty_contract (an upload, a PSA request made or deleted, an
 * off-chain registration) notifies DESIRED_WAKEUP_CHANNEL with the schema's name as payload,
 * once per statement. PostgreSQL delivers it when the transaction commits, and folds repeats
 * within one transaction into one: a reconciler listening steps at once instead of after its
 * interval. A reconciler that misses one (not listening at that moment) loses nothing: the
 * queue stays, and the next interval takes it.
 *
 * The function lives in the reconciler schema.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration runs against whatever schema existed before it
type AnyDb = Kysely<any>;

const FUNCTION = "desired_wakeup";
const QUEUES = ["desired_dirty_cid", "desired_dirty_contract"] as const;

async function up(db: AnyDb, schema: string): Promise<void> {
  const fn = sql.id(schema, FUNCTION);
  await sql`create function ${fn}() returns trigger language plpgsql as $$
    begin
      perform pg_notify(${sql.lit(DESIRED_WAKEUP_CHANNEL)}, tg_table_schema);
      return null;
    end $$`.execute(db);
  for (const queue of QUEUES) {
    await sql`create trigger ${sql.id(`${queue}_wakeup`)} after insert on ${sql.id(schema, queue)}
      for each statement execute function ${fn}()`.execute(db);
  }
}

async function down(db: AnyDb, schema: string): Promise<void> {
  for (const queue of QUEUES) {
    await sql`drop trigger if exists ${sql.id(`${queue}_wakeup`)} on ${sql.id(schema, queue)}`.execute(
      db,
    );
  }
  await sql`drop function if exists ${sql.id(schema, FUNCTION)}()`.execute(db);
}

export const desiredWakeupMigration: SchemaMigration = (schema) => ({
  up: (db) => up(db, schema),
  down: (db) => down(db, schema),
});
