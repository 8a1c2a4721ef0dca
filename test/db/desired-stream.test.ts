import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamDesiredPages, streamDesiredText } from "@/db/desired/index.js";
import { createStoreFixture, type StoreFixture } from "@/test/desired/store-setup.js";

/** The store's streams of the desired set, across page boundaries (pages of 20,000). */
describe("streaming the desired set", () => {
  let fx: StoreFixture;
  beforeAll(async () => {
    fx = await createStoreFixture(3_600_000);
  });
  afterAll(async () => {
    await fx.close();
  });

  /** Replaces desired_cid with `n` rows, inserted in an order unlike the CIDs' own. */
  async function fill(n: number): Promise<string[]> {
    const table = sql.id(fx.reconcilerSchema, "desired_cid");
    await sql`truncate ${table}`.execute(fx.db);
    await sql`insert into ${table} (cid, reasons, is_confirmed, is_pending, is_optimistic,
        is_demoted, updated_at)
      select 'bafk' || md5(i::text), '[]'::jsonb, true, false, false, false, now()
      from generate_series(1, ${n}::int) as i`.execute(fx.db);
    const { rows } = await sql<{ cid: string }>`select cid from ${table}`.execute(fx.db);
    // Bytewise order: the column's collation is C.
    return rows.map((row) => row.cid).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  it.each([0, 1, 20_000, 40_001])("%i CIDs: every one once, ascending, in pages", async (n) => {
    const expected = await fill(n);
    const pages: string[][] = [];
    for await (const page of streamDesiredPages(fx.db, fx.reconcilerSchema)) pages.push(page);
    expect(pages.flat()).toEqual(expected);
    expect(pages.every((page) => page.length > 0 && page.length <= 20_000)).toBe(true);

    const texts: Array<{ text: string; count: number }> = [];
    for await (const page of streamDesiredText(fx.db, fx.reconcilerSchema)) texts.push(page);
    expect(texts.flatMap((page) => page.text.split("\n"))).toEqual(expected);
    for (const page of texts) expect(page.text.split("\n").length).toBe(page.count);
    expect(texts.map((page) => page.count)).toEqual(pages.map((page) => page.length));
  });
});
