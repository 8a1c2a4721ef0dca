import { randomBytes } from "node:crypto";
import pg from "pg";

/** The Postgres every test uses: DATABASE_URL, or the local server this machine runs. */
export const TEST_DATABASE_URL =
  process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";

export type TestSchema = {
  databaseUrl: string;
  /** A fresh, unique schema name (lowercase), created empty. */
  schema: string;
  /** Drops the schema and everything in it. Safe to call twice. */
  drop(): Promise<void>;
};

/** Creates a unique schema for one suite; pair it with `afterAll(() => schema.drop())`. */
export async function createTestSchema(prefix = "t"): Promise<TestSchema> {
  const schema = `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;
  await withClient((client) => client.query(`CREATE SCHEMA "${schema}"`));
  let dropped = false;
  return {
    databaseUrl: TEST_DATABASE_URL,
    schema,
    async drop() {
      if (dropped) return;
      dropped = true;
      await withClient((client) => client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
    },
  };
}

async function withClient<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}
