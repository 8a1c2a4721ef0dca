import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { sql } from "kysely";
import { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyIdOf } from "@/api/auth.js";
import { type ApiFixture, createApiFixture, formDataBody } from "./api-fixture.js";

async function pinCount(fixture: ApiFixture): Promise<number> {
  let count = 0;
  for (const backend of fixture.backends) for await (const _ of backend.pins.listPins({})) count++;
  return count;
}

async function rowCount(fixture: ApiFixture, table: string): Promise<number> {
  const result = await sql<{
    n: string;
  }>`select count(*)::text as n from ${sql.table(`${fixture.schema.schema}.${table}`)}`.execute(
    fixture.db,
  );
  return Number(result.rows[0]?.n);
}

/** Exactly what the Aragon client sends: fetch + FormData with the file in `entry`. */
function aragonAdd(
  fixture: ApiFixture,
  content: Blob | string,
  headers: Record<string, string> = {},
) {
  const form = new FormData();
  form.append("entry", content);
  return fixture.app.request("/api/v0/add", { method: "POST", body: form, headers });
}

function expectWellFormedError(body: unknown): void {
  expect(body).toMatchObject({
    error: { reason: expect.stringMatching(/^[A-Z_]+$/), details: expect.any(String) },
  });
  expect(JSON.stringify(body)).not.toMatch(/at .*\.ts:\d+|node_modules|helia:\/\/|\/tmp\//);
}

describe("Quasar routes (Aragon client)", () => {
  let fixture: ApiFixture;
  beforeAll(async () => {
    fixture = await createApiFixture();
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it("add → 201 CID text, cat streams it back, the upload is recorded and pinned", async () => {
    const bytes = new Uint8Array(300_000).map((_, i) => (i * 31) % 251);
    const before = Date.now();
    const response = await aragonAdd(fixture, new Blob([bytes]));
    const after = Date.now();
    expect(response.status).toBe(201);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
    const answered = await response.text();
    // Kubo's (and the original Quasar's js-ipfs) add defaults: CIDv0, dag-pb leaves.
    expect(CID.parse(answered).version).toBe(0);
    // Records are keyed by the CIDv1 spelling, as the indexer keys a PinHash.
    const cid = CID.parse(answered).toV1().toString();

    const cat = await fixture.app.request(`/api/v0/cat?arg=${cid}`);
    expect(cat.status).toBe(200);
    expect(Buffer.from(await cat.arrayBuffer()).equals(Buffer.from(bytes))).toBe(true);

    const backend = fixture.backends[0]!;
    expect(await backend.pins.getPin(CID.parse(cid), {})).toBeDefined();
    const rows = await sql<{ uploader: string; size: string; backend_id: string }>`
      select uploader, size::text, backend_id from ${sql.table(`${fixture.schema.schema}.optimistic_pin`)} where cid = ${cid}`.execute(
      fixture.db,
    );
    expect(rows.rows).toEqual([{ uploader: "anonymous", size: "300000", backend_id: backend.id }]);

    const status = await fixture.app.request(`/api/v0/pins/${cid}`);
    expect(status.status).toBe(200);
    const body = (await status.json()) as {
      desired: boolean;
      reasons: { kind: string; expiresAt: string }[];
      backends: { backend: string; status: string }[];
    };
    expect(body.desired).toBe(true);
    expect(body.reasons).toHaveLength(1);
    expect(body.reasons[0]?.kind).toBe("optimistic");
    const expires = Date.parse(body.reasons[0]?.expiresAt ?? "");
    expect(expires).toBeGreaterThanOrEqual(before + fixture.config.QUASAR_PIN_TTL);
    expect(expires).toBeLessThanOrEqual(after + fixture.config.QUASAR_PIN_TTL);
    expect(body.backends).toEqual([expect.objectContaining({ backend: backend.id })]);
    // The answer does not wait for the ledger's confirmation (api/upload.ts, step 5).
    await expect.poll(() => backendStatuses(fixture, cid)).toEqual(["pinned"]);
    expect(JSON.stringify(body)).not.toContain("/tmp/");
  });

  it("accepts the file as a plain form field too (FormData.append with a string)", async () => {
    const response = await aragonAdd(fixture, "plain text entry");
    expect(response.status).toBe(201);
    const cid = await response.text();
    const cat = await fixture.app.request(`/api/v0/cat?arg=${cid}`);
    expect(await cat.text()).toBe("plain text entry");
  });

  it("dag/put → 201 CID text; dag/get → {value, remainderPath}, with paths", async () => {
    const doc = { title: "hello", nested: { list: [1, 2, 3], flag: true } };
    const put = await fixture.app.request("/api/v0/dag/put", {
      method: "POST",
      body: JSON.stringify(doc),
      headers: { "content-type": "application/json" },
    });
    expect(put.status).toBe(201);
    const cid = await put.text();
    expect(CID.parse(cid).code).toBe(0x71);

    const get = await fixture.app.request(`/api/v0/dag/get?arg=${cid}`);
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ value: doc, remainderPath: "" });

    const path = await fixture.app.request(`/api/v0/dag/get?arg=${cid}/nested/list`);
    expect(await path.json()).toEqual({ value: [1, 2, 3], remainderPath: "" });

    // A DAG node is not a file: cat refuses it clearly instead of failing mid-stream.
    const notAFile = await fixture.app.request(`/api/v0/cat?arg=${cid}`);
    expect(notAFile.status).toBe(400);
    expectWellFormedError(await notAFile.json());

    const missing = await fixture.app.request(`/api/v0/dag/get?arg=${cid}/nope`);
    expect(missing.status).toBe(400);
    expectWellFormedError(await missing.json());
  });

  it("ipfs-provider points at Quasar itself, never at a backend", async () => {
    const response = await fixture.app.request("http://quasar.example/api/v0/ipfs-provider");
    const body = await response.json();
    expect(body).toEqual({
      baseUrl: "http://quasar.example/api/v0/",
      dagGetUrl: "dag/get?arg=",
      dagPutUrl: "dag/put",
    });
  });

  it("cat of content no backend holds is 404, not a network fetch", async () => {
    const response = await fixture.app.request(
      "/api/v0/cat?arg=bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    );
    expect(response.status).toBe(404);
    expectWellFormedError(await response.json());
  });

  it("answers every bad request with a clear 4xx, stores nothing, keeps serving", async () => {
    const pinsBefore = await pinCount(fixture);
    const rowsBefore = await rowCount(fixture, "optimistic_pin");
    const boundary = "----quasar";
    const cases: [string, RequestInit & { path: string }, number, string][] = [
      [
        "multipart without a file",
        await (async () => {
          const { body, contentType } = await formDataBody({ other: "x" });
          return {
            path: "/api/v0/add",
            method: "POST",
            body,
            headers: { "content-type": contentType },
          };
        })(),
        400,
        "MISSING_FILE",
      ],
      [
        "multipart with an empty body",
        {
          path: "/api/v0/add",
          method: "POST",
          body: "",
          headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
        },
        400,
        "INVALID_MULTIPART",
      ],
      [
        "truncated multipart",
        {
          path: "/api/v0/add",
          method: "POST",
          body: `--${boundary}\r\nContent-Disposition: form-data; name="entry"; filename="a"\r\n\r\nhalf a file`,
          headers: { "content-type": `multipart/form-data; boundary=${boundary}` },
        },
        400,
        "INVALID_MULTIPART",
      ],
      [
        "multipart without boundary",
        {
          path: "/api/v0/add",
          method: "POST",
          body: "x",
          headers: { "content-type": "multipart/form-data" },
        },
        400,
        "INVALID_MULTIPART",
      ],
      [
        "add as JSON",
        {
          path: "/api/v0/add",
          method: "POST",
          body: "{}",
          headers: { "content-type": "application/json" },
        },
        415,
        "UNSUPPORTED_MEDIA_TYPE",
      ],
      [
        "add without content type",
        { path: "/api/v0/add", method: "POST", body: "x" },
        415,
        "UNSUPPORTED_MEDIA_TYPE",
      ],
      [
        "dag/put invalid JSON",
        {
          path: "/api/v0/dag/put",
          method: "POST",
          body: "{nope",
          headers: { "content-type": "application/json" },
        },
        400,
        "INVALID_JSON",
      ],
      [
        "dag/put empty",
        {
          path: "/api/v0/dag/put",
          method: "POST",
          body: "",
          headers: { "content-type": "application/json" },
        },
        400,
        "INVALID_JSON",
      ],
      [
        "dag/put as text",
        {
          path: "/api/v0/dag/put",
          method: "POST",
          body: "{}",
          headers: { "content-type": "text/plain" },
        },
        415,
        "UNSUPPORTED_MEDIA_TYPE",
      ],
      [
        "dag/put huge JSON",
        {
          path: "/api/v0/dag/put",
          method: "POST",
          body: JSON.stringify({ big: "x".repeat(fixture.config.QUASAR_MAX_JSON_BYTES) }),
          headers: { "content-type": "application/json" },
        },
        413,
        "PAYLOAD_TOO_LARGE",
      ],
      [
        "dag/put unknown codec",
        {
          path: "/api/v0/dag/put?format=raw",
          method: "POST",
          body: "{}",
          headers: { "content-type": "application/json" },
        },
        400,
        "INVALID_ARGUMENT",
      ],
      ["cat without arg", { path: "/api/v0/cat" }, 400, "INVALID_ARGUMENT"],
      ["cat with garbage arg", { path: "/api/v0/cat?arg=not-a-cid" }, 400, "INVALID_ARGUMENT"],
      [
        "cat with a huge arg",
        { path: `/api/v0/cat?arg=${"b".repeat(5000)}` },
        400,
        "INVALID_ARGUMENT",
      ],
      ["dag/get without arg", { path: "/api/v0/dag/get" }, 400, "INVALID_ARGUMENT"],
      ["dag/get with garbage", { path: "/api/v0/dag/get?arg=%00%01" }, 400, "INVALID_ARGUMENT"],
      ["pins with a bad cid", { path: "/api/v0/pins/zzz" }, 400, "INVALID_ARGUMENT"],
      ["pins with a bad filter", { path: "/api/v0/pins?status=bogus" }, 400, "INVALID_ARGUMENT"],
      ["pins with a bad limit", { path: "/api/v0/pins?limit=100000" }, 400, "INVALID_ARGUMENT"],
      ["unknown route", { path: "/api/v0/nope" }, 404, "NOT_FOUND"],
      [
        "storageContracts while admin is disabled",
        {
          path: "/api/v0/storageContracts",
          method: "POST",
          body: "{}",
          headers: { "content-type": "application/json" },
        },
        403,
        "ADMIN_DISABLED",
      ],
    ];
    for (const [label, { path, ...init }, status, reason] of cases) {
      const response = await fixture.app.request(path, init);
      const body = await response.json();
      expect({
        label,
        status: response.status,
        reason: (body as { error?: { reason?: string } }).error?.reason,
      }).toEqual({
        label,
        status,
        reason,
      });
      expectWellFormedError(body);
    }
    expect(await pinCount(fixture)).toBe(pinsBefore);
    expect(await rowCount(fixture, "optimistic_pin")).toBe(rowsBefore);
    expect((await fixture.app.request("/healthz")).status).toBe(200);
  });

  it("a second file in one request is refused and its pin removed", async () => {
    const pinsBefore = await pinCount(fixture);
    const form = new FormData();
    form.append("entry", new Blob(["one-of-two"]));
    form.append("entry", new Blob(["two-of-two"]));
    const response = await fixture.app.request("/api/v0/add", { method: "POST", body: form });
    expect(response.status).toBe(400);
    expect(await pinCount(fixture)).toBe(pinsBefore);
  });

  it("lists pins with filters and cursor pagination", async () => {
    const cids: string[] = [];
    for (let i = 0; i < 5; i++)
      cids.push(
        CID.parse(await (await aragonAdd(fixture, `page item ${i}`)).text())
          .toV1()
          .toString(),
      );
    const seen: string[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 20; page++) {
      const response = await fixture.app.request(
        `/api/v0/pins?limit=2${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expect(response.status).toBe(200);
      const body = (await response.json()) as { items: { cid: string }[]; nextCursor?: string };
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items.map((item) => item.cid));
      cursor = body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual([...seen].sort());
    expect(new Set(seen).size).toBe(seen.length);
    for (const cid of cids) expect(seen).toContain(cid);

    const backendId = fixture.backends[0]!.id;
    const pinned = (await (
      await fixture.app.request(`/api/v0/pins?status=pinned&backend=${backendId}&limit=1000`)
    ).json()) as {
      items: { cid: string }[];
    };
    for (const cid of cids) expect(pinned.items.map((i) => i.cid)).toContain(cid);
    const none = (await (await fixture.app.request("/api/v0/pins?status=failed")).json()) as {
      items: unknown[];
    };
    expect(none.items).toEqual([]);
    const otherBackend = (await (
      await fixture.app.request("/api/v0/pins?backend=helia-unknown")
    ).json()) as {
      items: unknown[];
    };
    expect(otherBackend.items).toEqual([]);
  });

  it("serves healthz, readyz, metrics, the OpenAPI document and the reference page", async () => {
    expect(await (await fixture.app.request("/healthz")).json()).toEqual({ ok: true });
    const ready = await fixture.app.request("/readyz");
    expect(ready.status).toBe(200);
    const readyBody = (await ready.json()) as { backends: { id: string; reachable: boolean }[] };
    expect(readyBody.backends).toEqual([{ id: fixture.backends[0]!.id, reachable: true }]);
    const metrics = await (await fixture.app.request("/metrics")).text();
    expect(metrics).toMatch(
      /quasar_api_requests_total\{method="POST",route="\/api\/v0\/add",status="201"\} \d+/,
    );
    expect(metrics).toMatch(/quasar_api_uploads_total\{kind="add",outcome="stored"\} \d+/);
    const doc = (await (await fixture.app.request("/openapi.json")).json()) as {
      paths: Record<string, unknown>;
    };
    for (const path of [
      "/api/v0/add",
      "/api/v0/dag/put",
      "/api/v0/dag/get",
      "/api/v0/cat",
      "/api/v0/ipfs-provider",
      "/api/v0/storageContracts",
      "/api/v0/pins/{cid}",
      "/api/v0/pins",
      "/kubo/api/v0/add",
      "/kubo/api/v0/dag/put",
      "/kubo/api/v0/cat",
      "/kubo/api/v0/block/get",
      "/healthz",
      "/readyz",
    ]) {
      expect(doc.paths, path).toHaveProperty([path]);
    }
    for (const path of ["/docs", "/docs/plain"]) {
      const page = await fixture.app.request(path);
      expect(page.status, path).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/text\/html/);
      expect(await page.text()).toContain("/openapi.json");
    }
  });

  it("answers CORS preflights from the configured origins", async () => {
    const response = await fixture.app.request("/api/v0/add", {
      method: "OPTIONS",
      headers: { origin: "https://app.example", "access-control-request-method": "POST" },
    });
    expect(response.status).toBeLessThan(300);
    expect(response.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("when recording fails, the client gets 503 and the backend keeps no pin", async () => {
    const pinsBefore = await pinCount(fixture);
    // Fault injection on a real database: the optimistic_pin table vanishes (as in a broken
    // migration), so the transaction fails after the backend has stored the file, before any pin.
    await sql`alter table ${sql.table(`${fixture.schema.schema}.optimistic_pin`)} rename to optimistic_pin_gone`.execute(
      fixture.db,
    );
    try {
      const response = await aragonAdd(fixture, "content whose record fails");
      expect(response.status).toBe(503);
      const body = await response.json();
      expectWellFormedError(body);
      expect(body).toMatchObject({ error: { reason: "STORAGE_FAILED" } });
      expect(await pinCount(fixture)).toBe(pinsBefore);
      const ledger = await sql<{
        n: string;
      }>`select count(*)::text as n from ${sql.table(`${fixture.schema.schema}.pin_ledger`)}`.execute(
        fixture.db,
      );
      expect(Number(ledger.rows[0]?.n)).toBe(pinsBefore);
      // The refusal is counted as a failed upload (backend or database), not a client error.
      expect(await (await fixture.app.request("/metrics")).text()).toMatch(
        /quasar_api_uploads_total\{kind="add",outcome="failed"\} [1-9]/,
      );
    } finally {
      await sql`alter table ${sql.table(`${fixture.schema.schema}.optimistic_pin_gone`)} rename to optimistic_pin`.execute(
        fixture.db,
      );
    }
    expect((await aragonAdd(fixture, "works again")).status).toBe(201);
  });
  it("a failed record of content Quasar already tracks keeps that pin", async () => {
    const first = await aragonAdd(fixture, "already tracked content");
    expect(first.status).toBe(201);
    const cid = CID.parse(await first.text());
    await sql`alter table ${sql.table(`${fixture.schema.schema}.optimistic_pin`)} rename to optimistic_pin_gone`.execute(
      fixture.db,
    );
    try {
      const again = await aragonAdd(fixture, "already tracked content");
      expect(again.status).toBe(503);
    } finally {
      await sql`alter table ${sql.table(`${fixture.schema.schema}.optimistic_pin_gone`)} rename to optimistic_pin`.execute(
        fixture.db,
      );
    }
    expect(await fixture.backends[0]!.pins.getPin(cid, {})).toBeDefined();
  });
});

describe("limits, keys, rate limit, admin", () => {
  let fixture: ApiFixture;
  const KEY = "upload-key-0123456789";
  const ADMIN = "admin-token-abcdef";
  beforeAll(async () => {
    fixture = await createApiFixture({
      env: {
        QUASAR_MAX_UPLOAD_BYTES: "10000",
        QUASAR_API_KEYS: `${KEY},another-key`,
        QUASAR_ADMIN_TOKEN: ADMIN,
        QUASAR_CORS_ORIGINS: "https://good.example",
      },
    });
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it("uploads need a valid key; the uploader is recorded as the key id", async () => {
    expect((await aragonAdd(fixture, "x")).status).toBe(401);
    const wrong = await aragonAdd(fixture, "x", { authorization: "Bearer wrong" });
    expect(wrong.status).toBe(401);
    expectWellFormedError(await wrong.json());
    const ok = await aragonAdd(fixture, "keyed content", { authorization: `Bearer ${KEY}` });
    expect(ok.status).toBe(201);
    const cid = CID.parse(await ok.text())
      .toV1()
      .toString();
    const rows = await sql<{
      uploader: string;
    }>`select uploader from ${sql.table(`${fixture.schema.schema}.optimistic_pin`)} where cid = ${cid}`.execute(
      fixture.db,
    );
    expect(rows.rows).toEqual([{ uploader: keyIdOf(KEY) }]);
    expect(JSON.stringify(rows.rows)).not.toContain(KEY);
    // Reading stays open.
    expect((await fixture.app.request(`/api/v0/cat?arg=${cid}`)).status).toBe(200);
  });

  it("an upload over QUASAR_MAX_UPLOAD_BYTES is 413 and leaves nothing pinned", async () => {
    const pinsBefore = await pinCount(fixture);
    const response = await aragonAdd(fixture, new Blob([new Uint8Array(50_000)]), {
      authorization: `Bearer ${KEY}`,
    });
    expect(response.status).toBe(413);
    expectWellFormedError(await response.json());
    expect(await pinCount(fixture)).toBe(pinsBefore);
  });

  it("registers storage contracts off-chain: admin only, any case stored lowercase, 201 then 200", async () => {
    const address = "0x5FbDB2315678afecb367f032d93F642f64180aa3";
    const post = (body: unknown, token?: string) =>
      fixture.app.request("/api/v0/storageContracts", {
        method: "POST",
        body: JSON.stringify(body),
        headers: {
          "content-type": "application/json",
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      });
    expect((await post({ contractAddress: address })).status).toBe(401);
    expect((await post({ contractAddress: address }, KEY)).status).toBe(401);
    const created = await post({ contractAddress: address }, ADMIN);
    expect(created.status).toBe(201);
    expect(await created.json()).toMatchObject({
      address: address.toLowerCase(),
      chainId: 31337,
      created: true,
    });
    const again = await post({ contractAddress: address.toLowerCase(), chainId: 31337 }, ADMIN);
    expect(again.status).toBe(200);
    for (const bad of [
      { contractAddress: "0x123" },
      { contractAddress: 42 },
      {},
      { contractAddress: address, chainId: 5 },
      { contractAddress: address, extra: 1 },
    ]) {
      const response = await post(bad, ADMIN);
      expect(response.status, JSON.stringify(bad)).toBe(400);
      expectWellFormedError(await response.json());
    }
    const rows = await sql<{
      contract: string;
    }>`select contract from ${sql.table(`${fixture.schema.schema}.offchain_registration`)}`.execute(
      fixture.db,
    );
    expect(rows.rows).toEqual([{ contract: address.toLowerCase() }]);
    const list = await (await fixture.app.request("/api/v0/storageContracts")).json();
    expect(list).toEqual([
      expect.objectContaining({
        chainId: 31337,
        address: address.toLowerCase(),
        source: "offchain",
        registeredBy: "admin",
      }),
    ]);
  });

  it("CORS allows only the configured origins", async () => {
    const preflight = (origin: string) =>
      fixture.app.request("/api/v0/add", {
        method: "OPTIONS",
        headers: { origin, "access-control-request-method": "POST" },
      });
    expect(
      (await preflight("https://good.example")).headers.get("access-control-allow-origin"),
    ).toBe("https://good.example");
    expect(
      (await preflight("https://evil.example")).headers.get("access-control-allow-origin"),
    ).toBeNull();
  });
});

describe("rate limit", () => {
  let fixture: ApiFixture;
  beforeAll(async () => {
    fixture = await createApiFixture({
      env: { QUASAR_RATE_LIMIT: "3", QUASAR_RATE_LIMIT_WINDOW: "15m", QUASAR_API_KEYS: "k1,k2" },
    });
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it("limits per key, answers 429 with Retry-After, and resets after the window", async () => {
    const get = (token?: string) =>
      fixture.app.request(
        "/api/v0/ipfs-provider",
        token ? { headers: { authorization: `Bearer ${token}` } } : {},
      );
    for (let i = 0; i < 3; i++) expect((await get("k1")).status).toBe(200);
    const limited = await get("k1");
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBe(15 * 60);
    expectWellFormedError(await limited.json());
    // Another key and anonymous clients have their own windows.
    expect((await get("k2")).status).toBe(200);
    expect((await get()).status).toBe(200);
    // Operational routes are never limited.
    expect((await fixture.app.request("/healthz")).status).toBe(200);
    fixture.clock.offsetMs += 15 * 60 * 1000;
    expect((await get("k1")).status).toBe(200);
  });
});

describe("a pin that fails after the upload was recorded", () => {
  let fixture: ApiFixture;
  beforeAll(async () => {
    fixture = await createApiFixture();
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it("answers 503, never a CID, and hands the recorded intent to the reconciler at once", async () => {
    // Fault injection on the real helia stores: the datastore's pinned-block directory is
    // replaced by a plain file, so storing the blocks and reading pins work but recording a
    // pin fails (ENOTDIR, even for root). The label is the test's own temp directory.
    const directory = /^helia:\/\/(.+)\?offline=true$/.exec(fixture.backends[0]!.label)?.[1];
    expect(directory).toBeDefined();
    const pinnedBlocks = join(directory as string, "data", "pinned-block");
    await rm(pinnedBlocks, { recursive: true, force: true });
    await writeFile(pinnedBlocks, "not a directory");
    const bytes = `recorded, then the pin fails ${Date.now()}`;
    let cid: string;
    try {
      const response = await aragonAdd(fixture, bytes);
      expect(response.status).toBe(503);
      const body = await response.json();
      expectWellFormedError(body);
      expect(body).toMatchObject({ error: { reason: "BACKEND_UNAVAILABLE" } });
      const rows = await sql<{
        cid: string;
        status: string;
        owned: boolean;
        due: boolean;
        last_error: string | null;
      }>`select cid, status, owned, next_attempt_at <= now() as due, last_error
         from ${sql.table(`${fixture.schema.schema}.pin_ledger`)}`.execute(fixture.db);
      expect(rows.rows).toHaveLength(1);
      const row = rows.rows[0]!;
      cid = row.cid;
      // Still desired by the optimistic row; queued, owned and due now for the engine.
      expect(row).toMatchObject({ status: "queued", owned: true, due: true });
      expect(row.last_error).toBeTruthy();
      expect(await rowCount(fixture, "optimistic_pin")).toBe(1);
      expect(await fixture.backends[0]!.pins.getPin(CID.parse(cid), {})).toBeUndefined();
    } finally {
      await rm(pinnedBlocks, { force: true });
      await mkdir(pinnedBlocks, { recursive: true });
    }
    // Once the node can pin again, the same upload is stored, pinned and owned.
    const again = await aragonAdd(fixture, bytes);
    expect(again.status).toBe(201);
    expect(
      CID.parse(await again.text())
        .toV1()
        .toString(),
    ).toBe(cid);
    expect((await fixture.backends[0]!.pins.getPin(CID.parse(cid), {}))?.name).toBe("quasar");
    await expect.poll(() => backendStatuses(fixture, cid)).toEqual(["pinned"]);
  });
});

/** The ledger status of `cid` on each backend, as GET /api/v0/pins/{cid} answers it. */
async function backendStatuses(fixture: ApiFixture, cid: string): Promise<string[]> {
  const status = (await (await fixture.app.request(`/api/v0/pins/${cid}`)).json()) as {
    backends: { status: string }[];
  };
  return status.backends.map((b) => b.status);
}
