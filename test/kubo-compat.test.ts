import { randomBytes } from "node:crypto";
import * as dagCbor from "@ipld/dag-cbor";
import * as dagJson from "@ipld/dag-json";
import * as dagPb from "@ipld/dag-pb";
import { create } from "kubo-rpc-client";
import { base36 } from "multiformats/bases/base36";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalizeCid } from "@/src/cid.js";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";
import { type KuboDaemon, startKubo } from "./harness/kubo.js";

/**
 * Kubo is the oracle: the same request goes to a real Kubo 0.43 daemon and to Quasar's Kubo
 * mount (backed by another Kubo daemon, and by helia), and the answers must be the same.
 * Content is random, so nothing is shared by accident between the daemons.
 */

type Part = { filename?: string; directory?: boolean; bytes?: Uint8Array; field?: string };
type Line = { Name: string; Hash: string; Size: string };

const BOUNDARY = "kubo-compat-boundary";

/** A multipart body as `ipfs add` sends it: paths in URL-encoded filenames, directories typed. */
function multipart(parts: Part[]): { body: Uint8Array; contentType: string } {
  const chunks: Buffer[] = [];
  for (const part of parts) {
    const filename =
      part.filename === undefined ? "" : `; filename="${encodeURIComponent(part.filename)}"`;
    const type = part.directory ? "application/x-directory" : "application/octet-stream";
    chunks.push(
      Buffer.from(
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${part.field ?? "file"}"${filename}\r\nContent-Type: ${type}\r\n\r\n`,
      ),
      Buffer.from(part.bytes ?? new Uint8Array()),
      Buffer.from("\r\n"),
    );
  }
  chunks.push(Buffer.from(`--${BOUNDARY}--\r\n`));
  return {
    body: new Uint8Array(Buffer.concat(chunks)),
    contentType: `multipart/form-data; boundary=${BOUNDARY}`,
  };
}

type Answer = { status: number; lines: Line[]; error?: { Message: string; Type: string } };

async function parse(response: Response): Promise<Answer> {
  const text = await response.text();
  if (response.status !== 200) {
    return { status: response.status, lines: [], error: JSON.parse(text) };
  }
  const lines = text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Line);
  return { status: response.status, lines };
}

describe("Kubo compatibility: Kubo answers, Quasar must answer the same", () => {
  let oracle: KuboDaemon;
  let backendKubo: KuboDaemon;
  let onKubo: ApiFixture;
  let onHelia: ApiFixture;

  beforeAll(async () => {
    [oracle, backendKubo] = await Promise.all([startKubo(), startKubo()]);
    onKubo = await createApiFixture({ backendStrings: [backendKubo.connectionString] });
    onHelia = await createApiFixture();
  }, 120_000);
  afterAll(async () => {
    await onKubo?.close();
    await onHelia?.close();
    await oracle?.destroy();
    await backendKubo?.destroy();
  });

  const toKubo = async (query: string, parts: Part[]): Promise<Answer> => {
    const { body, contentType } = multipart(parts);
    return parse(
      await fetch(`${oracle.apiUrl}/api/v0/add?${query}`, {
        method: "POST",
        body,
        headers: { "content-type": contentType },
      }),
    );
  };
  const toQuasar = async (fixture: ApiFixture, query: string, parts: Part[]): Promise<Answer> => {
    const { body, contentType } = multipart(parts);
    return parse(
      await fixture.app.request(`/kubo/api/v0/add?${query}`, {
        method: "POST",
        body,
        headers: { "content-type": contentType },
      }),
    );
  };
  const quasars = () =>
    [
      ["Kubo", onKubo],
      ["helia", onHelia],
    ] as const;

  const SIZES = [0, 1, 262_143, 262_144, 262_145, 10 * 1024 * 1024];
  const QUERIES = [
    "",
    "cid-version=1",
    "raw-leaves=true",
    "cid-version=1&raw-leaves=false",
    "chunker=size-1024",
    "wrap-with-directory=true",
    "only-hash=true",
    "hash=sha2-256&cid-version=0",
  ];

  for (const size of SIZES) {
    it(`add of ${size} random bytes: same Hash, Name and Size for every flag`, async () => {
      const bytes = randomBytes(size);
      // 10 MiB in 1 KiB leaves is 10,240 blocks per add: the small sizes cover that chunker.
      const queries =
        size > 1024 * 1024
          ? QUERIES.map((query) => query.replace("size-1024", "size-65536"))
          : QUERIES;
      for (const query of queries) {
        const parts = [{ filename: "file.bin", bytes }];
        const expected = await toKubo(query, parts);
        expect(expected.status, query).toBe(200);
        for (const [name, fixture] of quasars()) {
          expect(await toQuasar(fixture, query, parts), `${name} backend, ?${query}`).toEqual(
            expected,
          );
        }
      }
      // Kubo's default is CIDv0 with dag-pb leaves.
      const [line] = (await toKubo("", [{ filename: "f", bytes }])).lines;
      expect(line?.Hash.startsWith("Qm")).toBe(true);
    }, 180_000);
  }

  it("only-hash stores, records and pins nothing", async () => {
    const bytes = randomBytes(300_000);
    for (const [, fixture] of quasars()) {
      const answer = await toQuasar(fixture, "only-hash=true", [{ filename: "x", bytes }]);
      const cid = CID.parse(answer.lines[0]?.Hash ?? "");
      const backend = fixture.backends[0];
      expect(await backend?.content.hasBlock(cid, {})).toBe(false);
      expect(await backend?.pins.getPin(cid, {})).toBeUndefined();
      const status = (await (await fixture.app.request(`/api/v0/pins/${cid}`)).json()) as {
        desired: boolean;
      };
      expect(status.desired).toBe(false);
    }
  });

  it("rabin: the Kubo backend gives Kubo's CID; helia, whose rabin differs, refuses clearly", async () => {
    const bytes = randomBytes(700_000);
    for (const query of ["chunker=rabin", "chunker=rabin-4096-8192-16384", "chunker=rabin-65536"]) {
      const parts = [{ filename: "r.bin", bytes }];
      const expected = await toKubo(query, parts);
      expect(expected.status).toBe(200);
      expect(await toQuasar(onKubo, query, parts)).toEqual(expected);
      const refused = await toQuasar(onHelia, query, parts);
      expect(refused.status).toBe(400);
      expect(refused.error?.Type).toBe("error");
      expect(refused.error?.Message).toMatch(/rabin chunker is not supported on a helia backend/);
    }
  });

  it("bad flags answer Kubo's error shape, never a different CID", async () => {
    const parts = [{ filename: "a", bytes: randomBytes(10) }];
    for (const [query, message] of [
      ["cid-version=2", /unknown CID version: 2/],
      ["hash=blake2b-256", /hash function "blake2b-256" is not supported/],
      ["chunker=buzhash", /chunker "buzhash" is not supported/],
      ["chunker=size-0", /chunker size must be greater than 0/],
      ["chunker=rabin-100-50-300", /rabin-min must be smaller than rabin-avg/],
      ["raw-leaves=maybe", /raw-leaves: not a boolean/],
    ] as const) {
      for (const [, fixture] of quasars()) {
        const answer = await toQuasar(fixture, query, parts);
        expect(answer.status, query).toBe(400);
        expect(answer.error).toMatchObject({
          Type: "error",
          Message: expect.stringMatching(message),
        });
      }
    }
  });

  const text = (value: string) => new TextEncoder().encode(value);
  const TREES: { name: string; query: string; parts: Part[] }[] = [
    {
      name: "two files",
      query: "",
      parts: [
        { filename: "a.txt", bytes: randomBytes(100) },
        { filename: "b.txt", bytes: randomBytes(300_000) },
      ],
    },
    {
      name: "the same name twice at the top",
      query: "",
      parts: [
        { filename: "a.txt", bytes: text("one") },
        { filename: "a.txt", bytes: text("two") },
      ],
    },
    {
      name: "an unnamed file",
      query: "",
      parts: [{ bytes: randomBytes(50) }],
    },
    {
      name: "a directory tree (-r)",
      query: "",
      parts: [
        { filename: "d", directory: true },
        { filename: "d/a.txt", bytes: randomBytes(10) },
        { filename: "d/sub", directory: true },
        { filename: "d/sub/b.txt", bytes: randomBytes(600_000) },
        { filename: "d/z", directory: true },
        { filename: "d/sub/c.txt", bytes: randomBytes(1) },
      ],
    },
    {
      name: "an implicit parent directory",
      query: "cid-version=1",
      parts: [{ filename: "e/f/a.txt", bytes: randomBytes(20) }],
    },
    {
      name: "an empty directory beside another",
      query: "",
      parts: [
        { filename: "d", directory: true },
        { filename: "e/a.txt", bytes: randomBytes(5) },
      ],
    },
    {
      name: "wrapped files and a directory",
      query: "wrap-with-directory=true",
      parts: [
        { filename: "x", directory: true },
        { filename: "x/a.txt", bytes: randomBytes(5) },
        { filename: "b.txt", bytes: randomBytes(262_145) },
      ],
    },
    {
      name: "a wrapped tree with CIDv1 and small chunks",
      query: "wrap-with-directory=true&cid-version=1&chunker=size-4096",
      parts: [
        { filename: "t/1", bytes: randomBytes(10_000) },
        { filename: "t/2", bytes: randomBytes(0) },
      ],
    },
    {
      name: "a hashed-only tree",
      query: "only-hash=true",
      parts: [
        { filename: "h", directory: true },
        { filename: "h/a", bytes: randomBytes(7) },
      ],
    },
  ];

  for (const tree of TREES) {
    it(`several files and directories: ${tree.name}`, async () => {
      const expected = await toKubo(tree.query, tree.parts);
      expect(expected.status).toBe(200);
      const files = tree.parts.filter((part) => !part.directory).length;
      expect(expected.lines.length).toBeGreaterThanOrEqual(files);
      for (const [name, fixture] of quasars()) {
        expect(await toQuasar(fixture, tree.query, tree.parts), `${name} backend`).toEqual(
          expected,
        );
      }
    });
  }

  it("hidden entries are added, with or without hidden=true, as Kubo's RPC does", async () => {
    // `ipfs add -r` leaves hidden files out on the client side; the RPC adds what it is sent.
    const parts: Part[] = [
      { filename: "d", directory: true },
      { filename: "d/.env", bytes: randomBytes(9) },
      { filename: "d/a", bytes: randomBytes(9) },
    ];
    for (const query of ["", "hidden=true"]) {
      const expected = await toKubo(query, parts);
      expect(expected.lines.map((line) => line.Name)).toContain("d/.env");
      for (const [name, fixture] of quasars()) {
        expect(await toQuasar(fixture, query, parts), name).toEqual(expected);
      }
    }
  });

  it("every root is recorded and pinned; every file is stored", async () => {
    const parts: Part[] = [
      { filename: "p", directory: true },
      { filename: "p/a", bytes: randomBytes(100) },
      { filename: "p/b", bytes: randomBytes(400_000) },
      { filename: "q.txt", bytes: randomBytes(30) },
    ];
    const expected = await toKubo("", parts);
    for (const [name, fixture] of quasars()) {
      const answer = await toQuasar(fixture, "", parts);
      expect(answer, name).toEqual(expected);
      const byName = new Map(answer.lines.map((line) => [line.Name, CID.parse(line.Hash)]));
      const backend = fixture.backends[0];
      if (!backend) throw new Error("no backend");
      // Kubo pins each top-level entry: the directory p and the file q.txt.
      for (const root of ["p", "q.txt"]) {
        const cid = byName.get(root) as CID;
        // Pinned under the CIDv1 the ledger keys (on Kubo a Qm… pin would be another pin).
        expect(await backend.pins.getPin(cid.toV1(), {}), `${name}: ${root} pinned`).toBeDefined();
        const status = (await (await fixture.app.request(`/api/v0/pins/${cid}`)).json()) as {
          desired: boolean;
        };
        expect(status.desired, `${name}: ${root} recorded`).toBe(true);
      }
      for (const file of ["p/a", "p/b"]) {
        expect(await backend.content.hasBlock(byName.get(file) as CID, {})).toBe(true);
      }
    }
  });

  it("the original /api/v0/add answers 201 with the CID Kubo's default add gives (Qm…)", async () => {
    for (const size of [1, 262_145]) {
      const bytes = randomBytes(size);
      const [expected] = (await toKubo("", [{ filename: "entry", bytes }])).lines;
      expect(expected?.Hash.startsWith("Qm")).toBe(true);
      for (const [name, fixture] of quasars()) {
        const form = new FormData();
        form.append("entry", new Blob([bytes]), "manifest.json");
        const response = await fixture.app.request("/api/v0/add", { method: "POST", body: form });
        expect(response.status, name).toBe(201);
        const cid = await response.text();
        expect(cid, name).toBe(expected?.Hash);
        // A PinHash of this Qm… is indexed under normalizeCid (CIDv1): the upload's record is
        // found under the same key, so content already on chain is recognised when uploaded.
        const status = (await (await fixture.app.request(`/api/v0/pins/${cid}`)).json()) as {
          cid: string;
          desired: boolean;
          reasons: { kind?: string; type?: string }[];
        };
        expect(status.cid).toBe(normalizeCid(cid));
        expect(status.desired).toBe(true);
        expect(status.reasons.length).toBeGreaterThan(0);
      }
    }
  });

  // ── dag/put, dag/get, cat, block/get|stat, version, id ─────────────────────────────────
  //
  // Error statuses: Kubo answers 400 (text) when it cannot parse an option and 500
  // ({Message, Code: 0}) for every refusal after that, even the client's own mistakes
  // (a negative offset, a path that does not exist). The mount answers Kubo's JSON shape with
  // Kubo's message, but keeps 4xx for what the client sent (a Quasar 5xx means Quasar failed:
  // alerts, retries, the fuzz suite's property) and 404 for content Quasar does not hold.
  // kubo-rpc-client raises the same Error with the same message either way.

  type Raw = { status: number; bytes: Buffer; text: string };
  const asRaw = async (response: Response): Promise<Raw> => {
    const bytes = Buffer.from(await response.arrayBuffer());
    return { status: response.status, bytes, text: bytes.toString("utf8") };
  };
  const body = (parts: Part[] | undefined) => {
    if (!parts) return {};
    const { body, contentType } = multipart(parts);
    return { body, headers: { "content-type": contentType } };
  };
  const kubo = async (command: string, query: string, parts?: Part[]): Promise<Raw> =>
    asRaw(
      await fetch(`${oracle.apiUrl}/api/v0/${command}?${query}`, {
        method: "POST",
        ...body(parts),
      }),
    );
  const quasar = async (
    fixture: ApiFixture,
    command: string,
    query: string,
    parts?: Part[],
  ): Promise<Raw> =>
    asRaw(
      await fixture.app.request(`/kubo/api/v0/${command}?${query}`, {
        method: "POST",
        ...body(parts),
      }),
    );
  /** Sends the same request to Kubo and to both Quasars; every answer must be Kubo's, byte for byte. */
  const same = async (command: string, query: string, parts?: Part[]): Promise<Raw> => {
    const expected = await kubo(command, query, parts);
    expect(expected.status, `Kubo: ${command}?${query}: ${expected.text.slice(0, 200)}`).toBe(200);
    for (const [name, fixture] of quasars()) {
      const answer = await quasar(fixture, command, query, parts);
      expect(answer.status, `${name}: ${command}?${query}: ${answer.text.slice(0, 300)}`).toBe(200);
      expect(answer.text, `${name}: ${command}?${query}`).toBe(expected.text);
      expect(answer.bytes.equals(expected.bytes), `${name}: ${command}?${query}`).toBe(true);
    }
    return expected;
  };
  type KuboError = { Message: string; Code: number; Type: string };
  /**
   * Kubo refuses the request too: both Quasars answer Kubo's JSON error shape with Kubo's
   * message (`message`, checked on Kubo's answer as well), 400 where Kubo says 400 or 500.
   */
  const refusedLikeKubo = async (
    command: string,
    query: string,
    message: RegExp | { kubo: RegExp; quasar: RegExp },
    parts?: Part[],
  ): Promise<void> => {
    const messages = message instanceof RegExp ? { kubo: message, quasar: message } : message;
    const expected = await kubo(command, query, parts);
    expect([400, 500], `Kubo: ${command}?${query}`).toContain(expected.status);
    expect(expected.text, `Kubo: ${command}?${query}`).toMatch(messages.kubo);
    await refusedByQuasar(command, query, messages.quasar, parts);
  };
  /** Quasar refuses with Kubo's error shape and a message saying why (Kubo may answer it). */
  const refusedByQuasar = async (
    command: string,
    query: string,
    message: RegExp,
    parts?: Part[],
    status = 400,
  ): Promise<void> => {
    for (const [name, fixture] of quasars()) {
      const answer = await quasar(fixture, command, query, parts);
      expect(answer.status, `${name}: ${command}?${query}: ${answer.text}`).toBe(status);
      const error = JSON.parse(answer.text) as KuboError;
      expect(error, `${name}: ${command}?${query}`).toEqual({
        Message: expect.stringMatching(message),
        Code: status < 500 ? 1 : 0,
        Type: "error",
      });
    }
  };
  const json = (value: string): Part[] => [{ filename: "node", bytes: text(value) }];
  const cbor = (value: unknown): Part[] => [{ filename: "node", bytes: dagCbor.encode(value) }];
  /** Puts one node on Kubo and both Quasars (same CID asserted), answering the CID. */
  const putEverywhere = async (query: string, parts: Part[]): Promise<string> => {
    const answer = await same("dag/put", query, parts);
    return (JSON.parse(answer.text) as { Cid: { "/": string } }).Cid["/"];
  };
  /** Adds a file on Kubo and both Quasars (same answer asserted), answering its CID. */
  const addEverywhere = async (query: string, parts: Part[]): Promise<string> => {
    const expected = await toKubo(query, parts);
    for (const [name, fixture] of quasars()) {
      expect(await toQuasar(fixture, query, parts), name).toEqual(expected);
    }
    return expected.lines.at(-1)?.Hash ?? "";
  };

  describe("dag/put", () => {
    const link = "bafyreigta75d5t23lqmze3nt6ph7upm2hgbeobsadjf6lnhgn5rrcqzooe";
    const VALUES = [
      '{"a":1,"b":[1,2,{"c":"x"}]}',
      `{"link":{"/":"${link}"},"list":[{"/":"${link}"}],"n":null,"t":true,"f":false}`,
      '{"bytes":{"/":{"bytes":"aGVsbG8"}},"empty":{"/":{"bytes":""}}}',
      '{"z":1,"a":2,"m":{"y":[],"b":{}}}',
      '{"neg":-42,"big":9007199254740993,"min":-9007199254740993,"half":1.5,"tiny":-2.5e-7}',
      '{"unicode":"héllo ✓ 😀","escaped":"a\\"b\\n","":"empty key"}',
      "[1,[2,[3,[4]]]]",
      '"a bare string"',
      "12",
      "null",
    ];
    const QUERIES = [
      "",
      "store-codec=dag-cbor&input-codec=dag-json",
      "store-codec=dag-json",
      "pin=true",
      "hash=sha2-256",
      "store-codec=dag-json&pin=true&hash=sha2-256",
    ];

    it("dag-json input (Kubo's default) stored as dag-cbor and dag-json: the same CID line", async () => {
      for (const value of VALUES) {
        for (const query of QUERIES) await same("dag/put", query, json(value));
      }
    });

    it("dag-cbor input (what kubo-rpc-client sends) and plain json input: the same CID line", async () => {
      const decoded = VALUES.map((value) => dagJson.decode(text(value)));
      for (const value of decoded) {
        for (const query of ["input-codec=dag-cbor", "input-codec=dag-cbor&store-codec=dag-json"])
          await same("dag/put", query, cbor(value));
      }
      for (const value of ['{"a":[1,2,3],"b":"x"}', '{"nested":{"deep":[{"k":"v"}]}}', "[]"]) {
        for (const query of ["input-codec=json", "input-codec=json&store-codec=dag-json"])
          await same("dag/put", query, json(value));
      }
    });

    it("a put node is recorded and pinned, whatever Kubo's default pin flag says", async () => {
      const query = "store-codec=dag-cbor";
      const cid = await putEverywhere(
        query,
        json(`{"pinned":"${randomBytes(8).toString("hex")}"}`),
      );
      for (const [name, fixture] of quasars()) {
        const backend = fixture.backends[0];
        if (!backend) throw new Error("no backend");
        expect(await backend.pins.getPin(CID.parse(cid), {}), name).toBeDefined();
        const status = (await (await fixture.app.request(`/api/v0/pins/${cid}`)).json()) as {
          desired: boolean;
        };
        expect(status.desired, name).toBe(true);
      }
    });

    it("what Kubo also refuses is refused in Kubo's error shape", async () => {
      await refusedLikeKubo("dag/put", "", /invalid|unexpected|not valid/i, json("not json"));
      await refusedLikeKubo("dag/put", "input-codec=dag-cbor", /./, [
        { filename: "node", bytes: text("{}") },
      ]);
      await refusedLikeKubo(
        "dag/put",
        "store-codec=bogus",
        { kubo: /unknown multicodec/, quasar: /store-codec "bogus" is not supported/ },
        json("{}"),
      );
      await refusedLikeKubo(
        "dag/put",
        "input-codec=bogus",
        { kubo: /unknown multicodec/, quasar: /input-codec "bogus" is not supported/ },
        json("{}"),
      );
      // Kubo: "file argument 'object data' is required" (400, text).
      // No node at all: Kubo answers 200 with nothing (no CID); Quasar says what is missing.
      const none = await kubo("dag/put", "", []);
      expect(none.status).toBe(200);
      expect(none.text).toBe("");
      await refusedByQuasar("dag/put", "", /no file in the multipart body/, []);
      // Kubo takes a part of any name as the node; Quasar only the field `file` (what every
      // Kubo client sends), and says so.
      expect((await kubo("dag/put", "", [{ field: "other", bytes: text("{}") }])).status).toBe(200);
      await refusedByQuasar("dag/put", "", /expected a part named "file"/, [
        { field: "other", bytes: text("{}") },
      ]);
    });

    it("what Quasar does not implement is refused by name, never stored differently", async () => {
      for (const [query, message] of [
        ["store-codec=raw", /store-codec "raw" is not supported by Quasar's Kubo mount/],
        ["store-codec=dag-pb", /store-codec "dag-pb" is not supported/],
        ["input-codec=dag-pb", /input-codec "dag-pb" is not supported/],
        ["hash=sha2-512", /hash "sha2-512" is not supported/],
        ["hash-alg=blake2b-256", /hash-alg "blake2b-256" is not supported/],
        ["pin=false", /pin=false is not supported: everything uploaded to Quasar is pinned/],
      ] as const) {
        await refusedByQuasar("dag/put", query, message, json('{"a":1}'));
      }
      // Kubo stores 1.0 as a float; JavaScript cannot keep it apart from 1.
      const floats = await kubo("dag/put", "", json('{"a":1.0}'));
      const ints = await kubo("dag/put", "", json('{"a":1}'));
      expect(floats.status).toBe(200);
      expect(floats.text).not.toBe(ints.text);
      for (const value of ['{"a":1.0}', "[1e3]", '{"x":{"y":-0.0}}', '{"s":"1.0","n":2.50e1}']) {
        await refusedByQuasar("dag/put", "", /the float .* has an integral value/, json(value));
      }
      // A dag-cbor float64 2.0, as another client's encoder may write it.
      const cborFloat = Buffer.from("a16161fb4000000000000000", "hex");
      expect((await kubo("dag/put", "input-codec=dag-cbor", [{ bytes: cborFloat }])).status).toBe(
        200,
      );
      await refusedByQuasar("dag/put", "input-codec=dag-cbor", /the float 2 has an integral/, [
        { filename: "node", bytes: cborFloat },
      ]);
      // Plain json: {"/": …} is a map to Kubo, a link to the dag-json reading backends use.
      const slash = json(`{"/":"${link}"}`);
      expect((await kubo("dag/put", "input-codec=json", slash)).status).toBe(200);
      await refusedByQuasar(
        "dag/put",
        "input-codec=json",
        /map keyed "\/" is not supported/,
        slash,
      );
      // Kubo stores each part as a node and answers a line for each.
      const two = [...json('{"a":1}'), ...json('{"b":2}')];
      expect((await kubo("dag/put", "", two)).text.trim().split("\n")).toHaveLength(2);
      await refusedByQuasar("dag/put", "", /several nodes in one dag\/put are not supported/, two);
    });
  });

  describe("dag/get", () => {
    let leaf: string;
    let root: string;
    let file: string;
    let dir: string;

    beforeAll(async () => {
      leaf = await putEverywhere("", json('{"a":1,"b":[1,2,{"c":"x"}],"s":"leaf"}'));
      root = await putEverywhere(
        "store-codec=dag-json",
        json(
          `{"link":{"/":"${leaf}"},"l":[{"/":"${leaf}"},7],"s":"str","n":null,"by":{"/":{"bytes":"aGVsbG8"}},"f":1.5}`,
        ),
      );
      file = await addEverywhere("", [{ filename: "f.bin", bytes: randomBytes(600_000) }]);
      dir = await addEverywhere("wrap-with-directory=true", [
        { filename: "n.json", bytes: text('{"x":1}') },
        { filename: "other.txt", bytes: randomBytes(300_000) },
      ]);
    }, 120_000);

    it("paths into maps, lists and through links across blocks: Kubo's dag-json", async () => {
      for (const path of [
        "",
        "/",
        "/link",
        "/link/b",
        "/link/b/2/c",
        "/link/s",
        "/l/0/a",
        "/l/1",
        "/s",
        "/n",
        "/by",
        "/f",
      ]) {
        await same("dag/get", `arg=${root}${path}`);
        await same("dag/get", `arg=/ipfs/${root}${path}`);
      }
    });

    it("dag-pb nodes (add's files and directories), and paths by link name as Kubo walks them", async () => {
      for (const arg of [file, dir, `${dir}/n.json`, `${dir}/other.txt`]) {
        await same("dag/get", `arg=${arg}`);
      }
    });

    it("numbers as Kubo writes them: integers beyond 2^53, small and large floats", async () => {
      const numbers = await putEverywhere(
        "",
        json(
          '{"big":9007199254740993,"min":-9223372036854775808,"max":9223372036854775807,"f":[1.5,-2.5e-7,1.25e+300,0.1,123456.789]}',
        ),
      );
      for (const path of ["", "/big", "/min", "/f", "/f/1", "/f/2"]) {
        await same("dag/get", `arg=${numbers}${path}`);
        await same("dag/get", `arg=${numbers}${path}&output-codec=dag-cbor`);
      }
    });

    it("output-codec=dag-cbor answers the node (or the value at the path) as dag-cbor", async () => {
      for (const arg of [root, `${root}/link`, `${root}/s`, `${root}/l`, file, leaf]) {
        await same("dag/get", `arg=${arg}&output-codec=dag-cbor`);
        await same("dag/get", `arg=${arg}&output-codec=dag-json`);
      }
    });

    it("a path that does not exist: Kubo's message", async () => {
      for (const [path, message] of [
        ["/missing", /key not found: \\?"missing\\?"/],
        ["/l/5", /key not found: \\?"5\\?"/],
        ["/link/b/x", /invalid segment for lookup on a list: \\?"x\\?"/],
        ["/s/x", /called on a string node/],
        [`/link/missing`, /key not found: \\?"missing\\?"/],
      ] as const) {
        await refusedLikeKubo("dag/get", `arg=${root}${path}`, message);
      }
      await refusedLikeKubo("dag/get", `arg=${dir}/nope`, /no link named \\?"nope\\?"/);
      await refusedLikeKubo("dag/get", `arg=${dir}/Links/0`, /no link named \\?"Links\\?"/);
    });

    it("unimplemented output codecs are refused; unknown CIDs are 404 (Kubo: 500)", async () => {
      for (const codec of ["raw", "json", "dag-pb"]) {
        await refusedByQuasar(
          "dag/get",
          `arg=${root}&output-codec=${codec}`,
          /output-codec ".+" is not supported by Quasar's Kubo mount/,
        );
      }
      const absent = CID.createV1(0x71, await sha256.digest(randomBytes(16))).toString();
      const expected = await kubo("dag/get", `arg=${absent}`);
      expect(expected.status).toBe(500);
      expect(expected.text).toMatch(/not found locally/);
      await refusedByQuasar("dag/get", `arg=${absent}`, /not stored by Quasar/, undefined, 404);
      await refusedLikeKubo("dag/get", "arg=notacid", {
        kubo: /invalid path .*notacid/,
        quasar: /not a valid CID/,
      });
    });
  });

  describe("cat with offset and length", () => {
    const bytes = randomBytes(700_000);
    let v0: string;
    let v1: string;

    beforeAll(async () => {
      // Three 256 KiB chunks (dag-pb leaves), and a CIDv1 raw-leaves file of 1 KiB chunks.
      v0 = await addEverywhere("", [{ filename: "c.bin", bytes }]);
      v1 = await addEverywhere("cid-version=1&chunker=size-1024", [
        { filename: "c.bin", bytes: bytes.subarray(0, 200_000) },
      ]);
    }, 120_000);

    it("ranges at the edges, across chunks and past the end: Kubo's bytes", async () => {
      const RANGES = [
        "",
        "offset=0",
        "offset=1",
        "offset=262143&length=2",
        "offset=262000&length=300000",
        "offset=262144",
        "offset=699999",
        "offset=700000",
        "offset=800000",
        "length=0",
        "offset=5&length=0",
        "length=1",
        "length=9999999",
        "offset=700000&length=5",
        "offset=0x10&length=0x10",
        "offset=010&length=1_000",
        "offset=0b11&length=0o7",
      ];
      for (const range of RANGES) {
        const answer = await same("cat", `arg=${v0}&${range}`);
        const offset = /offset=([^&]+)/.exec(range)?.[1];
        if (range === "offset=262000&length=300000") {
          expect(answer.bytes.equals(bytes.subarray(262_000, 562_000))).toBe(true);
        }
        if (offset === undefined && !range.includes("length")) {
          expect(answer.bytes.equals(bytes)).toBe(true);
        }
      }
      for (const range of ["", "offset=1023&length=2", "offset=150000&length=70000"]) {
        await same("cat", `arg=${v1}&${range}`);
      }
    });

    it("values Kubo cannot convert: Kubo's message, 400 as Kubo", async () => {
      for (const [query, option] of [
        ["offset=abc", "offset"],
        ["length=abc", "length"],
        ["offset=1.5", "offset"],
        ["offset=", "offset"],
        ["length=1e3", "length"],
        ["offset=99999999999999999999", "offset"],
        ["offset=%205", "offset"],
      ] as const) {
        const message = new RegExp(
          `could not convert (empty )?value.* to type \\\\?"int64\\\\?" \\(for option \\\\?"-${option}\\\\?"\\)`,
        );
        const expected = await kubo("cat", `arg=${v0}&${query}`);
        expect(expected.status, query).toBe(400);
        expect(expected.text, query).toMatch(message);
        await refusedByQuasar("cat", `arg=${v0}&${query}`, message);
      }
    });

    it("negative values: Kubo's message (Kubo answers 500, Quasar 400)", async () => {
      await refusedLikeKubo("cat", `arg=${v0}&offset=-1`, /cannot specify negative offset/);
      await refusedLikeKubo("cat", `arg=${v0}&length=-1`, /cannot specify negative length/);
    });

    it("a path inside a CID is refused by name; a CID not held is 404 (Kubo: 500)", async () => {
      const dir = await addEverywhere("wrap-with-directory=true", [
        { filename: "in.txt", bytes: randomBytes(10) },
      ]);
      expect((await kubo("cat", `arg=${dir}/in.txt`)).status).toBe(200);
      await refusedByQuasar("cat", `arg=${dir}/in.txt`, /a path inside a CID is not supported/);
      const absent = CID.createV1(0x55, await sha256.digest(randomBytes(16))).toString();
      expect((await kubo("cat", `arg=${absent}`)).status).toBe(500);
      await refusedByQuasar("cat", `arg=${absent}`, /not stored by Quasar/, undefined, 404);
    });
  });

  describe("block/get and block/stat", () => {
    it("every kind of block: Kubo's bytes and Kubo's {Key, Size}", async () => {
      const file = await addEverywhere("", [{ filename: "b.bin", bytes: randomBytes(300_000) }]);
      const rawLeaves = await addEverywhere("cid-version=1&chunker=size-1000", [
        { filename: "r.bin", bytes: randomBytes(2_500) },
      ]);
      const cborNode = await putEverywhere("", json(`{"b":"${randomBytes(4).toString("hex")}"}`));
      const jsonNode = await putEverywhere(
        "store-codec=dag-json",
        json(`{"j":{"/":"${cborNode}"}}`),
      );
      const root = dagPb.decode((await kubo("block/get", `arg=${file}`)).bytes);
      const leaf = root.Links[0]?.Hash.toString() ?? "";
      const rawRoot = dagPb.decode((await kubo("block/get", `arg=${rawLeaves}`)).bytes);
      const rawLeaf = rawRoot.Links[0]?.Hash.toString() ?? "";
      expect(rawLeaf.startsWith("bafk")).toBe(true);
      for (const cid of [file, leaf, rawLeaves, rawLeaf, cborNode, jsonNode]) {
        await same("block/get", `arg=${cid}`);
        await same("block/stat", `arg=${cid}`);
        await same("block/stat", `arg=/ipfs/${cid}`);
      }
      // A CIDv0 asked as CIDv1 (base32, base36): the same block; Key in base32 as Kubo.
      const v1 = CID.parse(file).toV1();
      await same("block/stat", `arg=${v1.toString()}`);
      await same("block/stat", `arg=${v1.toString(base36)}`);
      await same("block/get", `arg=${v1.toString(base36)}`);
    });

    it("absent and invalid CIDs: Kubo's error shape", async () => {
      const absent = CID.createV1(0x55, await sha256.digest(randomBytes(16))).toString();
      for (const command of ["block/get", "block/stat"]) {
        expect((await kubo(command, `arg=${absent}`)).text).toMatch(/not found locally/);
        await refusedByQuasar(command, `arg=${absent}`, /not stored by Quasar/, undefined, 404);
        await refusedLikeKubo(command, "arg=nope", {
          kubo: /invalid path .*nope/,
          quasar: /not a valid CID/,
        });
      }
    });
  });

  describe("version and id: Quasar is not a Kubo node, the shape is Kubo's", () => {
    const shape = (value: Record<string, unknown>) =>
      Object.fromEntries(
        Object.entries(value).map(([key, inner]) => [
          key,
          inner === null ? "null" : Array.isArray(inner) ? "array" : typeof inner,
        ]),
      );

    it("the same keys with the same JSON types as Kubo's answers", async () => {
      for (const command of ["version", "id"]) {
        const expected = JSON.parse((await kubo(command, "")).text) as Record<string, unknown>;
        for (const [name, fixture] of quasars()) {
          const answer = await quasar(fixture, command, "");
          expect(answer.status, name).toBe(200);
          const value = JSON.parse(answer.text) as Record<string, unknown>;
          expect(shape(value), `${name}: ${command}`).toEqual(shape(expected));
        }
      }
      const version = JSON.parse((await quasar(onHelia, "version", "")).text) as {
        Version: string;
      };
      expect(version.Version).toBe(`${oracle.version}+quasar`);
    });

    it("kubo-rpc-client's version() and id() work against the mount", async () => {
      const url = await onHelia.listen();
      const client = create({ url: `${url}/kubo/api/v0` });
      const version = await client.version();
      expect(version.version).toMatch(/^0\.43\.1\+quasar$/);
      const id = await client.id();
      expect(id.id.toString()).toBe("12D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN2Nz9ttwiw");
      expect(id.agentVersion).toBe("quasar");
      const kuboId = await create({ url: `${oracle.apiUrl}/api/v0` }).id();
      expect(Object.keys(id).sort()).toEqual(Object.keys(kuboId).sort());
      await refusedByQuasar(
        "id",
        `arg=${kuboId.id.toString()}`,
        /id of another peer is not supported/,
      );
    });
  });
});
