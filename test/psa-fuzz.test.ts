import fc from "fast-check";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";

/**
 * 1,000 random Pinning Service API requests: bad JSON, bad CIDs, huge names, unknown
 * parameters, other keys' requestids, wrong methods and tokens. Whatever arrives, the API
 * answers below 500 with the spec's error shape, and a refused request stores nothing (no
 * request row, no usage change, no desired-set entry).
 */

const KEY = "psa-fuzz-key";
const OTHER = "psa-fuzz-other";
const CIDS = [
  "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
  "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG",
  "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
];

const text = (maxLength: number) => fc.string({ maxLength });
const cid = fc.oneof(
  fc.constantFrom(...CIDS),
  text(80),
  fc.constantFrom("", " ", "/ipfs/x", `${CIDS[0]}/a`, "Qm", "z".repeat(300), "bafy"),
);
const name = fc.oneof(text(40), fc.string({ minLength: 250, maxLength: 300 }), fc.constant(null));
const meta = fc.oneof(
  fc.dictionary(text(10), text(10), { maxKeys: 4 }),
  fc.dictionary(text(5), fc.integer(), { maxKeys: 2 }),
  fc.constantFrom("x", 3, [], null),
);
const origins = fc.oneof(
  fc.array(fc.oneof(fc.constant("/ip4/127.0.0.1/tcp/4001"), text(20)), { maxLength: 25 }),
  fc.constantFrom("x", 1, null),
);
const pinBody = fc.oneof(
  fc.record({ cid, name, meta, origins }, { requiredKeys: [] }),
  fc.constantFrom("{", "[]", "null", "", '{"cid":', "\u0000", '{"cid":1}'),
  text(60),
);
const queryString = fc
  .dictionary(
    fc.oneof(
      fc.constantFrom("cid", "name", "match", "status", "before", "after", "limit", "meta"),
      text(8),
    ),
    fc.oneof(
      text(30),
      fc.constantFrom(
        CIDS.join(","),
        "exact",
        "ipartial",
        "pinned,queued",
        "2020-01-01T00:00:00Z",
        "2020-01-01T00:00:00.123456789+02:00",
        "0",
        "1000",
        "1001",
        '{"a":"b"}',
        "n".repeat(300),
      ),
    ),
    { maxKeys: 4 },
  )
  .map((params) => new URLSearchParams(params).toString());
const token = fc.constantFrom(KEY, KEY, KEY, OTHER, "wrong", null);

describe("Pinning Service API fuzz", () => {
  let fx: ApiFixture;
  const known: string[] = [];
  const otherKeys: string[] = [];

  const counts = async () => {
    const schema = fx.schema.schema;
    const row = await sql<{ requests: number; usage: string; dirty: number }>`select
      (select count(*)::int from ${sql.id(schema, "psa_request")}) as requests,
      (select coalesce(sum(requests), 0)::text from ${sql.id(schema, "psa_usage")}) as usage,
      (select count(*)::int from ${sql.id(schema, "desired_dirty_cid")}) as dirty`.execute(fx.db);
    return row.rows[0];
  };

  beforeAll(async () => {
    fx = await createApiFixture({ env: { QUASAR_API_KEYS: `${KEY},${OTHER}` } });
    for (const [list, key] of [
      [known, KEY],
      [otherKeys, OTHER],
    ] as const) {
      const response = await fx.app.request("/psa/pins", {
        method: "POST",
        headers: { authorization: `Bearer ${key}` },
        body: JSON.stringify({ cid: CIDS[0] }),
      });
      list.push(((await response.json()) as { requestid: string }).requestid);
    }
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("1,000 random requests: never 5xx, errors well formed, refusals store nothing", async () => {
    const requestid = fc.oneof(
      fc.constantFrom("known", "other", "00000000-0000-4000-8000-000000000000"),
      text(40),
    );
    const request = fc.record({
      method: fc.constantFrom("GET", "POST", "DELETE", "PUT", "PATCH"),
      path: fc.oneof(
        fc.constant("/psa/pins"),
        requestid.map((id) => ({ id })),
        fc.constantFrom("/psa", "/psa/pins/", "/psa/pins/a/b"),
      ),
      query: queryString,
      body: pinBody,
      token,
    });
    let served = 0;
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        let path: string;
        if (typeof r.path === "string") path = r.path;
        else {
          const id =
            r.path.id === "known" ? known[0] : r.path.id === "other" ? otherKeys[0] : r.path.id;
          path = `/psa/pins/${encodeURIComponent(id ?? "")}`;
        }
        const before = await counts();
        const hasBody = r.method === "POST" || r.method === "PUT" || r.method === "PATCH";
        const response = await fx.app.request(`${path}${r.query ? `?${r.query}` : ""}`, {
          method: r.method,
          headers: r.token === null ? {} : { authorization: `Bearer ${r.token}` },
          ...(hasBody
            ? { body: typeof r.body === "string" ? r.body : JSON.stringify(r.body) }
            : {}),
        });
        served++;
        expect(response.status).toBeLessThan(500);
        const bodyText = await response.text();
        if (response.status >= 400) {
          expect(JSON.parse(bodyText)).toMatchObject({
            error: { reason: expect.stringMatching(/^[A-Z_]+$/), details: expect.any(String) },
          });
          expect(await counts()).toEqual(before);
        }
        // Another key's request is never touched.
        if (r.token !== OTHER) {
          const other = await fx.app.request(`/psa/pins/${otherKeys[0]}`, {
            headers: { authorization: `Bearer ${OTHER}` },
          });
          expect(other.status).toBe(200);
        }
      }),
      { numRuns: 1000, seed: 11 },
    );
    expect(served).toBe(1000);
  });
});
