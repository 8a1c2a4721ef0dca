import { sql } from "kysely";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyIdOf } from "@/api/auth.js";
import { createApiKey } from "@/db/keys/keys.js";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";

/**
 * The served Pinning Service API (/psa) on real parts: the app over a fresh schema, keys from
 * QUASAR_API_KEYS and from the database. Statuses are driven by writing the ledger rows the
 * reconciler would write (this file tests the API's reading of them, not the reconciler).
 */

const KEY_A = "psa-key-a";
const KEY_B = "psa-key-b";

/** Lets the clock move on, so requests and the step's evaluation get distinct times. */
const pause = () => new Promise((resolve) => setTimeout(resolve, 5));

async function rawCid(seed: string): Promise<string> {
  const bytes = new TextEncoder().encode(seed);
  return CID.create(1, raw.code, await sha256.digest(bytes)).toString();
}

type PinStatusBody = {
  requestid: string;
  status: string;
  created: string;
  pin: { cid: string; name?: string; origins: string[]; meta: Record<string, string> };
  delegates: string[];
  info: Record<string, string>;
};

describe("Pinning Service API (served)", () => {
  let fx: ApiFixture;
  let dbKey: string;
  const call = (
    method: string,
    path: string,
    options: { key?: string | null; body?: unknown } = {},
  ) => {
    const key = options.key === undefined ? KEY_A : options.key;
    return fx.app.request(`/psa${path}`, {
      method,
      headers: {
        ...(key === null ? {} : { authorization: `Bearer ${key}` }),
        ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
      },
      ...(options.body !== undefined
        ? { body: typeof options.body === "string" ? options.body : JSON.stringify(options.body) }
        : {}),
    });
  };
  const post = async (pin: unknown, key?: string) => {
    const response = await call("POST", "/pins", { body: pin, ...(key ? { key } : {}) });
    expect(response.status).toBe(202);
    return (await response.json()) as PinStatusBody;
  };
  const list = async (query: string, key?: string) => {
    const response = await call("GET", `/pins${query}`, key ? { key } : {});
    expect(response.status).toBe(200);
    return (await response.json()) as { count: number; results: PinStatusBody[] };
  };
  /** What the desired step does when it counts a CID's requests: the CID leaves its queue. */
  const takeFromQueue = async (cid: string) => {
    await sql`delete from ${sql.id(fx.schema.schema, "desired_dirty_cid")} where cid = ${cid}`.execute(
      fx.db,
    );
  };
  /** The reconciler at work on `cid`: its requests counted, its ledger row at `status`. */
  const setLedger = async (cid: string, status: string, error: string | null = null) => {
    const backendId = fx.backends[0]?.id as string;
    await takeFromQueue(cid);
    await sql`insert into ${sql.id(fx.schema.schema, "pin_ledger")} (backend_id, cid, status, owned, last_error)
      values (${backendId}, ${cid}, ${status}, true, ${error})
      on conflict (backend_id, cid) do update set status = excluded.status, last_error = excluded.last_error`.execute(
      fx.db,
    );
  };
  /** The desired step's answer for `cid` as it writes it: held for a PSA request, evaluated now. */
  const desiredForPsa = async (cid: string) => {
    await sql`insert into ${sql.id(fx.schema.schema, "desired_cid")}
        (cid, reasons, is_confirmed, is_pending, is_optimistic, is_demoted, is_psa, uses_tail, updated_at)
      values (${cid}, '[{"kind":"psa","requests":1}]'::jsonb, false, false, false, false, true, false,
        ${new Date(Date.now() + fx.clock.offsetMs)})
      on conflict (cid) do update set updated_at = excluded.updated_at`.execute(fx.db);
  };

  beforeAll(async () => {
    fx = await createApiFixture({
      env: { QUASAR_API_KEYS: `${KEY_A},${KEY_B}`, QUASAR_ADMIN_TOKEN: "psa-admin" },
    });
    const created = await createApiKey(fx.db, fx.schema.schema, {
      label: "quota key",
      quotaPins: 2,
    });
    dbKey = created.secret;
  });
  afterAll(async () => {
    await fx?.close();
  });

  it("401 without a token or with a bad one, in the spec's error shape", async () => {
    for (const key of [null, "wrong"]) {
      const response = await call("GET", "/pins", { key });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({
        error: { reason: "UNAUTHORIZED", details: expect.any(String) },
      });
    }
  });

  it("POST /pins → 202 PinStatus (queued), GET by id, the request is a desired reason", async () => {
    const cid = await rawCid("first");
    const body = await post({
      cid,
      name: "first",
      meta: { app: "t" },
      origins: ["/ip4/127.0.0.1/tcp/1"],
    });
    expect(body).toMatchObject({
      status: "queued",
      pin: { cid, name: "first", meta: { app: "t" }, origins: ["/ip4/127.0.0.1/tcp/1"] },
      delegates: [],
      info: {},
    });
    expect(body.requestid).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(body.created).toISOString()).toBe(body.created);
    const got = await call("GET", `/pins/${body.requestid}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(body);
    const dirty = await sql<{
      cid: string;
    }>`select cid from ${sql.id(fx.schema.schema, "desired_dirty_cid")}`.execute(fx.db);
    expect(dirty.rows.map((row) => row.cid)).toContain(cid);
  });

  it("status follows the ledger; status_details carries the last error", async () => {
    const cid = await rawCid("status");
    const { requestid } = await post({ cid });
    const status = async () =>
      (await (await call("GET", `/pins/${requestid}`)).json()) as PinStatusBody;
    expect((await status()).status).toBe("queued");
    await setLedger(cid, "queued", "content not found yet");
    expect(await status()).toMatchObject({
      status: "queued",
      info: { status_details: "content not found yet" },
    });
    await setLedger(cid, "pinning");
    expect((await status()).status).toBe("pinning");
    await setLedger(cid, "pinned");
    expect((await status()).status).toBe("pinned");
    await setLedger(cid, "failed", "gave up after the deadline");
    expect((await status()).status).toBe("failed");
  });

  it("a request the desired step has not counted reads queued, whatever the ledger holds", async () => {
    // `ipfs pin remote rm` then `add`: the pin in the ledger belongs to the deleted request,
    // and the reconciler may be about to unpin it. Answering `pinned` would let the client
    // drop its own copy of content that is on its way out.
    const cid = await rawCid("deleted and asked again");
    const status = async (requestid: string, key = KEY_A) =>
      ((await (await call("GET", `/pins/${requestid}`, { key })).json()) as PinStatusBody).status;
    const first = await post({ cid });
    expect(first.status).toBe("queued");
    await pause();
    const other = await post({ cid }, KEY_B);
    await pause();
    await desiredForPsa(cid);
    await setLedger(cid, "pinned");
    expect(await status(first.requestid)).toBe("pinned");
    expect(await status(other.requestid, KEY_B)).toBe("pinned");

    expect((await call("DELETE", `/pins/${first.requestid}`)).status).toBe(202);
    await pause();
    const again = await post({ cid });
    expect(again.status).toBe("queued");
    expect(await status(again.requestid)).toBe("queued");
    const pinnedOnly = await list(`?cid=${cid}&status=pinned`);
    expect(pinnedOnly.results).toEqual([]);
    // The other key's request was counted before: it keeps reading the ledger.
    expect(await status(other.requestid, KEY_B)).toBe("pinned");

    // The step counts the new request: the ledger speaks for it again.
    await takeFromQueue(cid);
    expect(await status(again.requestid)).toBe("pinned");
    expect((await list(`?cid=${cid}&status=pinned`)).results.map((r) => r.requestid)).toEqual([
      again.requestid,
    ]);
  });

  it("a listed PinStatus (rendered by PostgreSQL) equals the one GET answers (rendered here)", async () => {
    const cid = await rawCid("rendered twice");
    await post({ cid, origins: ["/ip4/10.0.0.1/tcp/4001"], meta: { 'k"ey': "v\u00e9" } });
    await post({ cid: await rawCid("named"), name: 'with "quotes" and é' });
    await setLedger(cid, "pinning", 'a "quoted" error');
    await sql`insert into ${sql.id(fx.schema.schema, "optimistic_pin")} (cid, created_at, expires_at, size, uploader, backend_id)
      values (${cid}, now(), now() + interval '1 hour', 1234, 'test', 'elsewhere')`.execute(fx.db);
    const listed = await list("?status=queued,pinning,pinned,failed&limit=1000");
    expect(listed.results.length).toBeGreaterThan(2);
    for (const result of listed.results) {
      const single = await call("GET", `/pins/${result.requestid}`);
      expect(result).toEqual(await single.json());
    }
    const rendered = listed.results.find((r) => r.pin.cid === cid);
    expect(rendered?.info).toEqual({ status_details: 'a "quoted" error', dag_size: "1234" });
  });

  it("each key sees only its own requests; another key's requestid is 404", async () => {
    const cid = await rawCid("shared");
    const a = await post({ cid, name: "shared" });
    const b = await post({ cid, name: "shared" }, KEY_B);
    expect(a.requestid).not.toBe(b.requestid);
    expect((await call("GET", `/pins/${a.requestid}`, { key: KEY_B })).status).toBe(404);
    expect((await call("DELETE", `/pins/${a.requestid}`, { key: KEY_B })).status).toBe(404);
    const seenByB = await list(`?cid=${cid}&status=queued,pinning,pinned,failed`, KEY_B);
    expect(seenByB.results.map((r) => r.requestid)).toEqual([b.requestid]);
    // Deleting B's request leaves A's: the CID stays held (two requests → one).
    expect((await call("DELETE", `/pins/${b.requestid}`, { key: KEY_B })).status).toBe(202);
    expect((await call("GET", `/pins/${b.requestid}`, { key: KEY_B })).status).toBe(404);
    const held = await sql<{
      n: number;
    }>`select count(*)::int as n from ${sql.id(fx.schema.schema, "psa_request")} where cid = ${cid}`.execute(
      fx.db,
    );
    expect(held.rows[0]?.n).toBe(1);
  });

  it("replace: a new request with a new id, the old one 404, atomically", async () => {
    const old = await post({ cid: await rawCid("replace-old"), name: "old" });
    const newCid = await rawCid("replace-new");
    const response = await call("POST", `/pins/${old.requestid}`, {
      body: { cid: newCid, name: "new" },
    });
    expect(response.status).toBe(202);
    const replaced = (await response.json()) as PinStatusBody;
    expect(replaced.requestid).not.toBe(old.requestid);
    expect(replaced.pin).toMatchObject({ cid: newCid, name: "new" });
    expect((await call("GET", `/pins/${old.requestid}`)).status).toBe(404);
    // Replacing a request that is gone, or another key's: 404 and nothing created.
    const before = await list("?status=queued,pinning,pinned,failed&limit=1000");
    expect((await call("POST", `/pins/${old.requestid}`, { body: { cid: newCid } })).status).toBe(
      404,
    );
    expect(
      (await call("POST", `/pins/${replaced.requestid}`, { key: KEY_B, body: { cid: newCid } }))
        .status,
    ).toBe(404);
    // A bad replacement leaves the old request in place.
    expect(
      (await call("POST", `/pins/${replaced.requestid}`, { body: { cid: "nope" } })).status,
    ).toBe(400);
    const after = await list("?status=queued,pinning,pinned,failed&limit=1000");
    expect(after.count).toBe(before.count);
    expect((await call("GET", `/pins/${replaced.requestid}`)).status).toBe(200);
  });

  it("409 once a key's pin quota is used; deleting frees it; usage is listed for the admin", async () => {
    const first = await post({ cid: await rawCid("q1") }, dbKey);
    await post({ cid: await rawCid("q2") }, dbKey);
    const refused = await call("POST", "/pins", { key: dbKey, body: { cid: await rawCid("q3") } });
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: { reason: "INSUFFICIENT_FUNDS" } });
    expect((await call("DELETE", `/pins/${first.requestid}`, { key: dbKey })).status).toBe(202);
    await post({ cid: await rawCid("q3") }, dbKey);
    expect(
      (await fx.app.request("/api/v0/keys", { headers: { authorization: `Bearer ${KEY_A}` } }))
        .status,
    ).toBe(401);
    const answer = await fx.app.request("/api/v0/keys", {
      headers: { authorization: "Bearer psa-admin" },
    });
    expect(answer.status).toBe(200);
    const usage = (await answer.json()) as { id: string; label: string; requests: number }[];
    expect(usage.find((key) => key.label === "quota key")).toMatchObject({ requests: 2 });
    expect(usage.find((key) => key.id === keyIdOf(KEY_A))?.requests).toBeGreaterThan(0);
    expect(JSON.stringify(usage)).not.toContain(dbKey);
  });

  it("a revoked database key gets 401 (after the keyring's short cache)", async () => {
    const created = await createApiKey(fx.db, fx.schema.schema, { label: "to revoke" });
    expect((await call("GET", "/pins", { key: created.secret })).status).toBe(200);
    await sql`update ${sql.id(fx.schema.schema, "api_key")} set revoked_at = now() where id = ${created.key.id}`.execute(
      fx.db,
    );
    fx.clock.offsetMs += 10_000;
    expect((await call("GET", "/pins", { key: created.secret })).status).toBe(401);
  });
});

describe("Pinning Service API: listing rules (table tests against the spec)", () => {
  let fx: ApiFixture;
  const KEY = "psa-list-key";
  const all = "status=queued,pinning,pinned,failed";
  const ids: string[] = [];
  const cids: string[] = [];
  const NAMES = ["Alpha", "alpha", "alphabet", "Beta", "beta-alpha", "gamma_1", "gamma%1"];
  const get = async (query: string) => {
    const response = await fx.app.request(`/psa/pins?${query}`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    return {
      status: response.status,
      body: (await response.json()) as { count: number; results: PinStatusBody[] },
    };
  };

  beforeAll(async () => {
    fx = await createApiFixture({ env: { QUASAR_API_KEYS: KEY } });
    for (const [index, name] of NAMES.entries()) {
      const cid = await rawCid(`list-${index}`);
      cids.push(cid);
      const response = await fx.app.request("/psa/pins", {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({
          cid,
          name,
          meta: { index: String(index), parity: index % 2 ? "odd" : "even" },
        }),
      });
      ids.push(((await response.json()) as PinStatusBody).requestid);
    }
    // Request 0 is pinned, 1 pinning, 2 failed; the others queued. The desired step has
    // counted them all (their CIDs left its queue): statuses follow the ledger.
    await sql`delete from ${sql.id(fx.schema.schema, "desired_dirty_cid")}`.execute(fx.db);
    const backendId = fx.backends[0]?.id as string;
    for (const [index, status] of ["pinned", "pinning", "failed"].entries()) {
      await sql`insert into ${sql.id(fx.schema.schema, "pin_ledger")} (backend_id, cid, status, owned)
        values (${backendId}, ${cids[index]}, ${status}, true)`.execute(fx.db);
    }
  });
  afterAll(async () => {
    await fx?.close();
  });

  it.each<[string, string, number[]]>([
    ["exact (default)", "name=alpha", [1]],
    ["exact, explicit", "name=Alpha&match=exact", [0]],
    ["iexact", "name=ALPHA&match=iexact", [1, 0]],
    ["partial", "name=alpha&match=partial", [4, 2, 1]],
    ["ipartial", "name=ALPHA&match=ipartial", [4, 2, 1, 0]],
    ["partial takes % literally", "name=a%251&match=partial", [6]],
    ["partial takes _ literally", "name=a_1&match=partial", [5]],
    ["meta: one pair", `meta=${encodeURIComponent('{"parity":"odd"}')}`, [5, 3, 1]],
    [
      "meta: every pair must match",
      `meta=${encodeURIComponent('{"parity":"odd","index":"3"}')}`,
      [3],
    ],
    ["meta: no match", `meta=${encodeURIComponent('{"parity":"none"}')}`, []],
    ["cid list", "cid=CID0,CID3", [3, 0]],
  ])("%s", async (_, query, expected) => {
    const q = query.replace("CID0", cids[0] as string).replace("CID3", cids[3] as string);
    const { status, body } = await get(`${q}&${all}&limit=1000`);
    expect(status).toBe(200);
    expect(body.results.map((r) => ids.indexOf(r.requestid))).toEqual(expected);
    expect(body.count).toBe(expected.length);
  });

  it.each<[string, number[]]>([
    ["", [0]],
    ["status=pinned", [0]],
    ["status=pinning", [1]],
    ["status=failed", [2]],
    ["status=queued", [6, 5, 4, 3]],
    ["status=queued,failed", [6, 5, 4, 3, 2]],
  ])("status filter %j (absent means pinned only)", async (query, expected) => {
    const { body } = await get(`${query}&limit=1000`);
    expect(body.results.map((r) => ids.indexOf(r.requestid))).toEqual(expected);
    expect(body.count).toBe(expected.length);
    for (const result of body.results) if (query) expect(query).toContain(result.status);
  });

  it.each<[string, number]>([
    ["status=pinned", 1],
    ["status=pinning", 1],
    ["status=failed", 1],
    ["status=queued", 4],
    ["status=queued,failed", 5],
    ["status=queued,failed&name=alpha&match=partial", 2],
  ])(
    "a status-filtered count beyond the page %j (one grouped count serves them all)",
    async (query, count) => {
      const { body } = await get(`${query}&limit=1`);
      expect(body.results.length).toBe(1);
      expect(body.count).toBe(count);
    },
  );

  it("pages a status filter one by one as Kubo does, each page's count exact", async () => {
    const seen: number[] = [];
    let before: string | undefined;
    for (let page = 0; page < 10; page++) {
      const { body } = await get(`status=queued&limit=1${before ? `&before=${before}` : ""}`);
      expect(body.count).toBe(4 - seen.length);
      seen.push(...body.results.map((r) => ids.indexOf(r.requestid)));
      if (body.count === body.results.length) break;
      before = body.results[body.results.length - 1]?.created;
    }
    expect(seen).toEqual([6, 5, 4, 3]);
  });

  it("newest first; created unique; paging by before neither skips nor repeats, as Kubo pages", async () => {
    const seen: string[] = [];
    let before: string | undefined;
    for (let page = 0; page < 10; page++) {
      const { body } = await get(`${all}&limit=2${before ? `&before=${before}` : ""}`);
      expect(body.results.length).toBeGreaterThan(0);
      seen.push(...body.results.map((r) => r.requestid));
      // Kubo's stop rule: the last page is the one where count equals what it got.
      if (body.count === body.results.length) break;
      before = body.results[body.results.length - 1]?.created;
    }
    expect(seen).toEqual([...ids].reverse());
    const created = (await get(`${all}&limit=1000`)).body.results.map((r) => r.created);
    expect(new Set(created).size).toBe(created.length);
    expect([...created].sort().reverse()).toEqual(created);
  });

  it("after and before bound the window; limit caps the page but not the count", async () => {
    const { body } = await get(`${all}&limit=1000`);
    const byIndex = (index: number) =>
      body.results.find((r) => r.requestid === ids[index])?.created as string;
    const window = await get(`${all}&after=${byIndex(1)}&before=${byIndex(5)}`);
    expect(window.body.results.map((r) => ids.indexOf(r.requestid))).toEqual([4, 3, 2]);
    const limited = await get(`${all}&limit=1`);
    expect(limited.body.results).toHaveLength(1);
    expect(limited.body.count).toBe(NAMES.length);
  });

  it.each<[string, string]>([
    ["limit 0", "limit=0"],
    ["limit 1001", "limit=1001"],
    ["limit not a number", "limit=ten"],
    ["unknown status", "status=done"],
    ["unknown match", "match=fuzzy&name=a"],
    ["bad CID", "cid=nope"],
    ["11 CIDs", `cid=${Array.from({ length: 11 }, (_, i) => `bafkreid${i}`).join(",")}`],
    ["name over 255", `name=${"n".repeat(256)}`],
    ["before not RFC 3339", "before=yesterday"],
    ["meta not JSON", "meta=%7Bnope"],
    ["meta with a number", `meta=${encodeURIComponent('{"a":1}')}`],
  ])("400 for %s", async (_, query) => {
    const { status, body } = await get(query);
    expect(status).toBe(400);
    expect(body).toMatchObject({ error: { reason: expect.stringMatching(/^[A-Z_]+$/) } });
  });
});
