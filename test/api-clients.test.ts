import { request as httpRequest } from "node:http";
import { create } from "kubo-rpc-client";
import { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";

/**
 * Real clients over a real socket: the Aragon client's fetch + FormData flow, a stock
 * kubo-rpc-client pointed at the Kubo mount, and a raw HTTP client that keeps sending past
 * the upload limit.
 */
describe("real clients against the running API", () => {
  let fixture: ApiFixture;
  let base: string;
  const KEY = "client-key-42";
  beforeAll(async () => {
    fixture = await createApiFixture({
      env: { QUASAR_API_KEYS: KEY, QUASAR_MAX_UPLOAD_BYTES: String(1024 * 1024) },
    });
    base = await fixture.listen();
  });
  afterAll(async () => {
    await fixture?.close();
  });

  it("the Aragon client: fetch + FormData(entry) → CID text, then dag/put and dag/get", async () => {
    const form = new FormData();
    form.append(
      "entry",
      new Blob([JSON.stringify({ app: "voting", version: 3 })], { type: "application/json" }),
      "manifest.json",
    );
    const added = await fetch(`${base}/api/v0/add`, {
      method: "POST",
      body: form,
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(added.status).toBe(201);
    const cid = await added.text();
    const cat = await fetch(`${base}/api/v0/cat?arg=${cid}`);
    expect(JSON.parse(await cat.text())).toEqual({ app: "voting", version: 3 });

    const provider = (await (await fetch(`${base}/api/v0/ipfs-provider`)).json()) as {
      baseUrl: string;
      dagPutUrl: string;
      dagGetUrl: string;
    };
    expect(provider.baseUrl).toBe(`${base}/api/v0/`);
    const put = await fetch(`${provider.baseUrl}${provider.dagPutUrl}`, {
      method: "POST",
      body: JSON.stringify({ link: cid, n: 1 }),
      headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    });
    expect(put.status).toBe(201);
    const dagCid = await put.text();
    const got = await (await fetch(`${provider.baseUrl}${provider.dagGetUrl}${dagCid}`)).json();
    expect(got).toEqual({ value: { link: cid, n: 1 }, remainderPath: "" });
  });

  it("a stock kubo-rpc-client can add, cat, dag.put and dag.get through /kubo/api/v0", async () => {
    const client = create({
      url: `${base}/kubo/api/v0`,
      headers: { authorization: `Bearer ${KEY}` },
    });
    const bytes = new Uint8Array(700_000).map((_, i) => (i * 13) % 256);
    const added = await client.add(bytes);
    // Kubo's defaults (CIDv0, dag-pb leaves); `size` is Kubo's cumulative DAG size: the
    // bytes plus three leaf envelopes and the root node.
    expect(added.cid.version).toBe(0);
    expect(added.size).toBeGreaterThan(bytes.length);
    expect(added.size).toBeLessThan(bytes.length + 1024);
    expect(await fixture.backends[0]!.pins.getPin(added.cid, {})).toBeDefined();

    const chunks: Uint8Array[] = [];
    for await (const chunk of client.cat(added.cid)) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(Buffer.from(bytes))).toBe(true);

    const value = { hello: "world", list: [1, 2, { deep: true }], link: added.cid };
    const dagCid = await client.dag.put(value);
    expect(dagCid.code).toBe(0x71);
    const node = await client.dag.get(dagCid);
    expect(node.value.hello).toBe("world");
    expect(node.value.list).toEqual([1, 2, { deep: true }]);
    expect(CID.asCID(node.value.link)?.equals(added.cid)).toBe(true);

    const jsonCid = await client.dag.put({ a: 1 }, { storeCodec: "dag-json" });
    expect(jsonCid.code).toBe(0x0129);
    expect((await client.dag.get(jsonCid)).value).toEqual({ a: 1 });

    const status = (await (await fetch(`${base}/api/v0/pins/${dagCid}`)).json()) as {
      reasons: { kind: string }[];
    };
    expect(status.reasons.map((r) => r.kind)).toEqual(["optimistic"]);
  });

  it("kubo-rpc-client surfaces Quasar's errors as Kubo's {Message, Code, Type}", async () => {
    const anonymous = create({ url: `${base}/kubo/api/v0` });
    await expect(anonymous.add(new Uint8Array([1, 2, 3]))).rejects.toThrow(
      /missing or invalid credentials/,
    );
    const client = create({
      url: `${base}/kubo/api/v0`,
      headers: { authorization: `Bearer ${KEY}` },
    });
    const missing = CID.parse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy");
    await expect(
      (async () => {
        for await (const _ of client.cat(missing)) void _;
      })(),
    ).rejects.toThrow(/not stored by Quasar/);
    await expect(client.add(new Uint8Array([1]), { hashAlg: "blake2b-256" })).rejects.toThrow(
      /hash function "blake2b-256" is not supported/,
    );
    const raw = await fetch(`${base}/kubo/api/v0/cat?arg=nope`, { method: "POST" });
    expect(raw.status).toBe(400);
    expect(await raw.json()).toEqual({
      Message: expect.stringContaining("not a valid CID"),
      Code: 1,
      Type: "error",
    });
  });

  it("an upload over the limit is answered 413 while the client is still sending, and the server keeps serving", async () => {
    const pinsBefore = await countPins(fixture);
    const url = new URL(`${base}/api/v0/add`);
    const boundary = "----limit-test";
    const result = await new Promise<{ status: number; sent: number }>((resolve, reject) => {
      let sent = 0;
      let answered = false;
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          headers: {
            "content-type": `multipart/form-data; boundary=${boundary}`,
            authorization: `Bearer ${KEY}`,
            "transfer-encoding": "chunked",
          },
        },
        (res) => {
          answered = true;
          res.resume();
          res.on("end", () => resolve({ status: res.statusCode ?? 0, sent }));
        },
      );
      req.on("error", (error) => {
        // The server may reset the connection after answering; the answer is what counts.
        if (!answered) reject(error);
      });
      req.write(
        `--${boundary}\r\nContent-Disposition: form-data; name="entry"; filename="big"\r\n\r\n`,
      );
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = () => {
        // Keep sending (up to 64 MiB) until the answer arrives.
        while (!answered && sent < 64 * 1024 * 1024) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once("drain", pump);
            return;
          }
        }
        if (!answered) req.end();
      };
      pump();
    });
    expect(result.status).toBe(413);
    // Answered long before the client could send it all.
    expect(result.sent).toBeLessThan(32 * 1024 * 1024);
    expect(await countPins(fixture)).toBe(pinsBefore);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
  });
});

async function countPins(fixture: ApiFixture): Promise<number> {
  let count = 0;
  for await (const _ of fixture.backends[0]!.pins.listPins({})) count++;
  return count;
}
