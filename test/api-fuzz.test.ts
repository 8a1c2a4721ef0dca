import fc from "fast-check";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";

/**
 * Property-based: random methods, paths, query strings, content types and bodies at every
 * route. Whatever arrives, the API answers below 500 with a well-formed error body in the
 * route's format, stores nothing when it refuses, and keeps serving.
 */

const ROUTES = [
  ["POST", "/api/v0/add"],
  ["POST", "/api/v0/dag/put"],
  ["GET", "/api/v0/dag/get"],
  ["GET", "/api/v0/cat"],
  ["GET", "/api/v0/ipfs-provider"],
  ["GET", "/api/v0/storageContracts"],
  ["POST", "/api/v0/storageContracts"],
  ["GET", "/api/v0/pins"],
  ["GET", "/api/v0/pins/bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"],
  ["POST", "/kubo/api/v0/add"],
  ["POST", "/kubo/api/v0/dag/put"],
  ["POST", "/kubo/api/v0/dag/get"],
  ["POST", "/kubo/api/v0/cat"],
  ["POST", "/kubo/api/v0/block/get"],
] as const;

const KEY = "fuzz-key";
const ADMIN = "fuzz-admin";
const A_CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";
const BOUNDARY = "fuzzboundary";

const asciiText = (maxLength: number) =>
  fc.string({ unit: "binary-ascii", maxLength }).map((s) => s.replace(/[\r\n\0]/g, ""));

const queryValue = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.constantFrom(
    A_CID,
    `${A_CID}/a/b`,
    "/ipfs/x",
    "",
    "true",
    "1",
    "0",
    "dag-json",
    "raw",
    "-1",
    "99999999",
  ),
);
const query = fc.dictionary(
  fc.oneof(
    fc.constantFrom(
      "arg",
      "format",
      "store-codec",
      "input-codec",
      "cid-version",
      "status",
      "reason",
      "backend",
      "cursor",
      "limit",
      "offset",
      "length",
      "pin",
    ),
    fc.string({ maxLength: 10 }),
  ),
  queryValue,
  { maxKeys: 4 },
);

const contentType = fc.oneof(
  fc.constantFrom(
    "application/json",
    `multipart/form-data; boundary=${BOUNDARY}`,
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "text/plain",
    "application/octet-stream",
  ),
  asciiText(60),
  fc.constant(undefined),
);

const multipartBody = fc
  .array(
    fc.record({
      name: fc.oneof(fc.constantFrom("entry", "file", "dir", "x"), asciiText(20)),
      filename: fc.option(asciiText(20)),
      content: fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.json().map((j) => Buffer.from(j)),
      ),
      header: fc.option(asciiText(40)),
    }),
    { maxLength: 3 },
  )
  .chain((parts) =>
    fc.record({ truncate: fc.option(fc.nat()) }).map(({ truncate }) => {
      const pieces: Buffer[] = [];
      for (const part of parts) {
        pieces.push(Buffer.from(`--${BOUNDARY}\r\n`));
        pieces.push(
          Buffer.from(
            `Content-Disposition: form-data; name="${part.name}"${part.filename === null ? "" : `; filename="${part.filename}"`}\r\n${part.header === null ? "" : `${part.header}\r\n`}\r\n`,
          ),
        );
        pieces.push(Buffer.from(part.content), Buffer.from("\r\n"));
      }
      pieces.push(Buffer.from(`--${BOUNDARY}--\r\n`));
      const whole = Buffer.concat(pieces);
      return truncate === null ? whole : whole.subarray(0, truncate % (whole.length + 1));
    }),
  );

const body = fc.oneof(
  fc.constant(undefined),
  fc.uint8Array({ maxLength: 500 }).map((b) => Buffer.from(b)),
  fc.json().map((j) => Buffer.from(j)),
  fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
  multipartBody,
);

const auth = fc.constantFrom(
  undefined,
  `Bearer ${KEY}`,
  `Bearer ${ADMIN}`,
  "Bearer wrong",
  "Basic abc",
  "Bearer",
);

const requestArb = fc.record({
  route: fc.constantFrom(...ROUTES),
  method: fc.option(fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH")),
  suffix: fc.option(fc.constantFrom("/", "/x", "%2e%2e", "/..", `/${A_CID}`)),
  query,
  contentType,
  body,
  auth,
});

describe("random requests at every route", () => {
  let fixture: ApiFixture;
  beforeAll(async () => {
    fixture = await createApiFixture({
      env: { QUASAR_API_KEYS: KEY, QUASAR_ADMIN_TOKEN: ADMIN, QUASAR_MAX_JSON_BYTES: "4096" },
    });
  });
  afterAll(async () => {
    await fixture?.close();
  });

  const stored = async () => {
    let pins = 0;
    for await (const _ of fixture.backends[0]!.pins.listPins({})) pins++;
    const rows = await sql<{ uploads: string; registrations: string }>`select
      (select count(*) from ${sql.table(`${fixture.schema.schema}.optimistic_pin`)})::text as uploads,
      (select count(*) from ${sql.table(`${fixture.schema.schema}.offchain_registration`)})::text as registrations`.execute(
      fixture.db,
    );
    return { pins, uploads: rows.rows[0]?.uploads, registrations: rows.rows[0]?.registrations };
  };

  it("never answers 5xx, always a well-formed error, stores nothing when refusing", async () => {
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        const [defaultMethod, path] = r.route;
        const method = r.method ?? defaultMethod;
        const search = new URLSearchParams(r.query).toString();
        const url = `${path}${r.suffix ?? ""}${search ? `?${search}` : ""}`;
        const headers: Record<string, string> = {};
        if (r.contentType !== undefined) headers["content-type"] = r.contentType;
        if (r.auth !== undefined) headers.authorization = r.auth;
        const hasBody = method !== "GET" && r.body !== undefined;
        const before = await stored();
        const response = await fixture.app.request(url, {
          method,
          headers,
          ...(hasBody ? { body: new Uint8Array(r.body as Buffer) } : {}),
        });
        const text = await response.text();
        expect(response.status, `${method} ${url} → ${text}`).toBeLessThan(500);
        if (response.status >= 400) {
          refused++;
          expect(text).not.toBe("{}");
          const parsed = JSON.parse(text) as Record<string, unknown>;
          if (path.startsWith("/kubo/")) {
            expect(parsed).toEqual({ Message: expect.any(String), Code: 1, Type: "error" });
          } else {
            expect(parsed).toEqual({
              error: { reason: expect.stringMatching(/^[A-Z_]+$/), details: expect.any(String) },
            });
          }
          expect(text).not.toMatch(/\.ts:\d+|node_modules|\/tmp\/|helia:\/\//);
          expect(await stored()).toEqual(before);
        }
      }),
      { numRuns: 1000 },
    );
    // The generators mostly produce bad requests: the property was really exercised.
    expect(refused).toBeGreaterThan(500);
    expect((await fixture.app.request("/healthz")).status).toBe(200);
  });
});
