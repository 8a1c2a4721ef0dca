import { type Expression, sql, type Transaction } from "kysely";
import type { Database } from "../database.js";

/**
 * The CIDs one step must re-evaluate. An incremental step has a handful: they stay in memory.
 * A first fold of a long history, or a contract with millions of CIDs whose standing moves,
 * has as many as the history: past `spillAt` they move to a temporary table of the step's own
 * transaction (dropped at its end), so a step's memory does not grow with the history. Pages
 * come out in one order either way (bytewise, as `collate "C"` sorts), each CID once.
 *
 * The table takes duplicates and gets its index only when the pages are first read: one
 * sorted build instead of a B-tree insert per CID (at 200,000 CIDs, 2.3 s of server time for
 * the inserts into a primary key, the largest cost of a first fold after its own pin_ref rows).
 */
export class AffectedCids {
  private readonly memory = new Set<string>();
  private spilled = false;
  private indexed = false;
  private spilledCount = 0;

  constructor(
    private readonly trx: Transaction<Database>,
    private readonly spillAt: number,
  ) {}

  /** How many CIDs are held (exact in memory; once spilled, the rows inserted, duplicates too). */
  get size(): number {
    return this.spilled ? this.spilledCount : this.memory.size;
  }

  get isSpilled(): boolean {
    return this.spilled;
  }

  async add(cids: Iterable<string>): Promise<void> {
    if (!this.spilled) {
      for (const cid of cids) this.memory.add(cid);
      if (this.memory.size > this.spillAt) await this.spill();
      return;
    }
    let batch: string[] = [];
    for (const cid of cids) {
      batch.push(cid);
      if (batch.length >= INSERT_BATCH) {
        await this.insert(batch);
        batch = [];
      }
    }
    if (batch.length > 0) await this.insert(batch);
  }

  /**
   * Adds the `cid` column of `query` (a select over the step's own tables): in the database
   * itself once spilled, so millions of rows never cross into this process.
   */
  async addSelect(query: Expression<{ cid: string }> & { execute(): Promise<{ cid: string }[]> }) {
    if (!this.spilled) {
      await this.add((await query.execute()).map((row) => row.cid));
      return;
    }
    const result = await sql`insert into pg_temp.quasar_affected_cid (cid)
      select cid from (${query}) as q`.execute(this.trx);
    this.spilledCount += Number(result.numAffectedRows ?? 0n);
  }

  /** Every CID once, in ascending bytewise order, `size` at a time. */
  async *pages(size: number): AsyncGenerator<string[]> {
    if (!this.spilled) {
      const sorted = [...this.memory].sort(bytewise);
      for (let start = 0; start < sorted.length; start += size)
        yield sorted.slice(start, start + size);
      return;
    }
    if (!this.indexed) {
      await sql`create index on pg_temp.quasar_affected_cid (cid)`.execute(this.trx);
      await sql`analyze pg_temp.quasar_affected_cid`.execute(this.trx);
      this.indexed = true;
    }
    let after: string | null = null;
    for (;;) {
      const page: string[] = (
        await sql<{ cid: string }>`select distinct cid from pg_temp.quasar_affected_cid
          where ${after === null ? sql`true` : sql`cid > ${after}`}
          order by cid limit ${size}`.execute(this.trx)
      ).rows.map((row) => row.cid);
      if (page.length === 0) return;
      yield page;
      after = page[page.length - 1] as string;
      if (page.length < size) return;
    }
  }

  private async spill(): Promise<void> {
    // `collate "C"`: the index orders bytewise, as the in-memory pages do.
    await sql`create temporary table quasar_affected_cid (cid text collate "C" not null)
      on commit drop`.execute(this.trx);
    this.spilled = true;
    const held = [...this.memory];
    this.memory.clear();
    for (let start = 0; start < held.length; start += INSERT_BATCH)
      await this.insert(held.slice(start, start + INSERT_BATCH));
  }

  private async insert(cids: string[]): Promise<void> {
    const result = await sql`insert into pg_temp.quasar_affected_cid (cid)
      select unnest(${cids}::text[])`.execute(this.trx);
    this.spilledCount += Number(result.numAffectedRows ?? 0n);
  }
}

const INSERT_BATCH = 10_000;

/** Bytewise order of ASCII strings (CIDs are), as PostgreSQL's "C" collation sorts. */
function bytewise(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
