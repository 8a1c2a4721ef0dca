import { type Kysely, sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectDatabase } from "@/db/connect.js";
import type { Database } from "@/db/database.js";
import { AffectedCids } from "@/db/desired/affected.js";
import { TEST_DATABASE_URL } from "@/test/harness/postgres.js";

describe("AffectedCids (real PostgreSQL)", () => {
  let db: Kysely<Database>;
  beforeAll(() => {
    db = connectDatabase({ databaseUrl: TEST_DATABASE_URL, maxConnections: 2 });
  });
  afterAll(async () => {
    await db.destroy();
  });

  const collect = async (affected: AffectedCids, size: number) => {
    const pages: string[][] = [];
    for await (const page of affected.pages(size)) pages.push(page);
    return pages;
  };

  it("gives each CID once, bytewise, across pages, when spilled with duplicates", async () => {
    await db.transaction().execute(async (trx) => {
      const affected = new AffectedCids(trx, 3);
      await affected.add(["c", "a", "b"]);
      expect(affected.isSpilled).toBe(false);
      await affected.add(["a", "d"]);
      expect(affected.isSpilled).toBe(true);
      // Duplicates of spilled CIDs, within one call and across calls, and from a query.
      await affected.add(["b", "e", "e", "Z"]);
      await affected.addSelect(
        trx
          .selectFrom(sql<{ cid: string }>`(select unnest(array['a', 'f', 'f']) as cid)`.as("x"))
          .select("x.cid"),
      );
      const pages = await collect(affected, 2);
      // "Z" sorts before lowercase letters bytewise (collate "C"), as the in-memory pages do.
      expect(pages).toEqual([["Z", "a"], ["b", "c"], ["d", "e"], ["f"]]);
    });
  });

  it("orders in memory as it does once spilled", async () => {
    const cids = ["bafy2", "Qm1", "bafk9", "bafk10", "Qm1", "bafy2"];
    const unique = [...new Set(cids)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const spillAt of [100, 1]) {
      await db.transaction().execute(async (trx) => {
        const affected = new AffectedCids(trx, spillAt);
        await affected.add(cids);
        expect(affected.isSpilled).toBe(spillAt === 1);
        expect((await collect(affected, 4)).flat()).toEqual(unique);
      });
    }
  });
});
