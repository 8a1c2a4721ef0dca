import { type Kysely, type Migration, sql } from "kysely";

/**
 * Marks desired CIDs whose answer used an unfinalized PinHash. A reorg that removes that
 * PinHash changes nothing the step would otherwise notice (the contract's standing may stay
 * put, the reason need not be `pending`: a final Unregister turns it into `demoted`), so
 * every step re-evaluates the marked rows (the pending index, which served that query, goes).
 * The tail is small, and so is this set.
 */
// biome-ignore lint/suspicious/noExplicitAny: a migration runs against whatever schema existed before it
type AnyDb = Kysely<any>;

async function up(db: AnyDb): Promise<void> {
  await db.schema
    .alterTable("desired_cid")
    .addColumn("uses_tail", "boolean", (c) => c.notNull().defaultTo(false))
    .execute();
  await db.schema
    .createIndex("desired_cid_uses_tail_idx")
    .on("desired_cid")
    .column("cid")
    .where(sql.ref("uses_tail"), "=", true)
    .execute();
  // Rows written before this migration: pending ones are the ones that used the tail then.
  await db
    .updateTable("desired_cid")
    .set({ uses_tail: true })
    .where("is_pending", "=", true)
    .execute();
  // The step's re-evaluation query was the pending index's only reader; uses_tail covers it.
  await db.schema.dropIndex("desired_cid_pending_idx").ifExists().execute();
}

async function down(db: AnyDb): Promise<void> {
  await db.schema
    .createIndex("desired_cid_pending_idx")
    .ifNotExists()
    .on("desired_cid")
    .column("cid")
    .where(sql.ref("is_pending"), "=", true)
    .execute();
  await db.schema.dropIndex("desired_cid_uses_tail_idx").ifExists().execute();
  await db.schema.alterTable("desired_cid").dropColumn("uses_tail").execute();
}

export const desiredUsesTailMigration: Migration = { up, down };
