import { randomBytes } from "node:crypto";
import { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { normalizeCid } from "@/src/cid.js";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";
import { type KuboDaemon, startKubo } from "./harness/kubo.js";

/**
 * Kubo is the oracle: the same request goes to a real Kubo 0.43 daemon and to Quasar's Kubo
 * mount (backed by another Kubo daemon, and by helia), and the answers must be the same.
 * Content is random, so nothing is shared by accident between the daemons.
 */

type Part = { filename?: string; directory?: boolean; bytes?: Uint8Array };
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
        `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"${filename}\r\nContent-Type: ${type}\r\n\r\n`,
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
});
