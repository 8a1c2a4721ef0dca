import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KUBO_ADD_DEFAULTS } from "@/backends/add-options.js";
import {
  BackendStreamError,
  BackendUnavailableError,
  type ContentCapableBackend,
  createBackend,
  QUASAR_PIN_NAME,
  requireContent,
} from "@/backends/index.js";
import { createRpcTransport } from "@/backends/kubo/rpc.js";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";

async function drain(source: AsyncIterable<unknown>): Promise<number> {
  let count = 0;
  for await (const _ of source) count += 1;
  return count;
}

describe("a stream that fails after its 200 header throws instead of truncating", () => {
  let daemon: IpfsDaemon;
  let backend: ContentCapableBackend;
  let broken: CID;
  let last: CID;

  beforeAll(async () => {
    daemon = await startIpfsDaemon();
    backend = requireContent(createBackend(daemon.connectionString), "be tested");
    await backend.open();
    // A 2 MiB file is eight 256 KiB leaves; removing the last one (offline, nothing can
    // fetch it back) makes every full read fail after the first bytes went out.
    const bytes = randomBytes(2 * 1024 * 1024);
    async function* content() {
      yield bytes;
    }
    // Raw leaves (Kubo's `--raw-leaves`), so the last leaf's CID can be computed below.
    broken = (
      await backend.content.addFile(content(), {
        name: QUASAR_PIN_NAME,
        unixfs: { ...KUBO_ADD_DEFAULTS, cidVersion: 1, rawLeaves: true },
      })
    ).cid;
    await backend.pins.unpin(broken, {});
    // raw leaves: the last leaf's CID is the raw CID of the last 256 KiB
    last = CID.createV1(
      raw.code,
      await sha256.digest(bytes.subarray(2 * 1024 * 1024 - 256 * 1024)),
    );
    await daemon.rpc("block/rm", { arg: last.toString() });
  });

  afterAll(async () => {
    await backend?.close();
    await daemon?.destroy();
  });

  it("reads the daemon's X-Stream-Error trailer on dag/export (real Kubo)", async () => {
    // Offline Kubo gives up on the missing last leaf itself, mid-answer: it has already sent
    // 200 and most of the CAR, so only the trailer tells.
    const url = `${daemon.apiUrl}/api/v0/dag/export?arg=${broken}&timeout=1s`;
    const plain = await fetch(url, { method: "POST" });
    expect(plain.status).toBe(200);
    const truncated = Buffer.from(await plain.arrayBuffer()); // fetch sees a normal end
    expect(truncated.byteLength).toBeGreaterThan(0);
    expect(truncated.byteLength).toBeLessThan(2 * 1024 * 1024);

    const rpc = createRpcTransport({
      baseUrl: new URL(daemon.apiUrl),
      authorization: undefined,
      label: "test",
    });
    try {
      const body = await rpc.call("dag/export", {
        args: { arg: broken.toString(), timeout: "1s" },
      });
      expect(body.status).toBe(200);
      const failure = await drain(body).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(BackendStreamError);
      expect(String((failure as Error).message)).toMatch(/not found locally \(offline\)/);
      expect(String((failure as Error).message)).toContain(last.toString());
    } finally {
      rpc.close();
    }
  });

  it("an export of partly missing content ends with an error, never a short success", async () => {
    // Offline Kubo fails the walk at the missing block at once (a daemon that waited for the
    // network would be cut by the signal instead: BackendAbortedError).
    let bytes = 0;
    const failure = await (async () => {
      for await (const chunk of backend.content.exportCar(broken, {
        signal: AbortSignal.timeout(1_500),
      })) {
        bytes += chunk.byteLength;
      }
    })().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(BackendStreamError);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(2 * 1024 * 1024);
  });
});

/**
 * Faults no real daemon produces on demand: a connection cut in the middle of a chunked
 * answer, and a trailer error on a JSON stream. A real local HTTP server produces them.
 */
describe("broken answers from a misbehaving RPC endpoint", () => {
  let server: Server;
  let backend: ContentCapableBackend;
  const seen: { url: string; authorization: string | undefined }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ url: req.url ?? "", authorization: req.headers.authorization });
      const path = new URL(req.url ?? "/", "http://x").pathname;
      req.resume();
      if (path === "/api/v0/version") {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ Version: "0.30.0", Golang: "go1.22" }));
        return;
      }
      if (path === "/api/v0/pin/ls") {
        // one good line, then the daemon reports a failure in the trailer
        res.writeHead(200, { "content-type": "application/x-ndjson", Trailer: "X-Stream-Error" });
        res.write(
          `${JSON.stringify({ Cid: "bafkreiblaotdp3jz5y5b6dsvyrqchw6ntrtxj2q7x2ijpytrwv5hpbj3rq", Type: "recursive" })}\n`,
        );
        res.addTrailers({
          "X-Stream-Error": JSON.stringify({ Message: "datastore read failed", Code: 0 }),
        });
        res.end();
        return;
      }
      if (path === "/api/v0/cat" || path === "/api/v0/dag/export") {
        // half an answer, then the connection dies
        res.writeHead(200, { "content-type": "application/octet-stream" });
        res.write(randomBytes(10_000));
        setTimeout(() => res.socket?.destroy(), 50);
        return;
      }
      if (path === "/api/v0/pin/add") {
        res.writeHead(502);
        res.end("Bad Gateway");
        return;
      }
      res.writeHead(404);
      res.end();
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    backend = requireContent(
      createBackend(`ipfs://127.0.0.1:${(server.address() as AddressInfo).port}`),
      "be tested",
    );
    await backend.open();
  });

  afterAll(async () => {
    await backend?.close();
    server?.closeAllConnections();
    server?.close();
  });

  const cid = CID.parse("bafkreiblaotdp3jz5y5b6dsvyrqchw6ntrtxj2q7x2ijpytrwv5hpbj3rq");

  it("listPins throws when the trailer reports an error", async () => {
    await expect(drain(backend.pins.listPins({}))).rejects.toThrow(/datastore read failed/);
    await expect(drain(backend.pins.listPins({}))).rejects.toBeInstanceOf(BackendStreamError);
  });

  it("cat and exportCar throw when the connection is cut mid-answer", async () => {
    await expect(drain(backend.content.cat(cid, {}))).rejects.toBeInstanceOf(BackendStreamError);
    await expect(drain(backend.content.exportCar(cid, {}))).rejects.toBeInstanceOf(
      BackendStreamError,
    );
  });

  it("sends ?token= as a bearer header, never in the URL, and keeps it out of every error", async () => {
    const port = (server.address() as AddressInfo).port;
    const withToken = createBackend(`ipfs://127.0.0.1:${port}?token=T0K3N-secret`);
    seen.length = 0;
    const failure = await withToken.pins.pin(cid, { name: QUASAR_PIN_NAME }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(BackendUnavailableError);
    expect(seen.length).toBeGreaterThan(0);
    for (const request of seen) {
      expect(request.authorization).toBe("Bearer T0K3N-secret");
      expect(request.url).not.toContain("T0K3N");
    }
    const rendered = `${String(failure)} ${JSON.stringify(failure)} ${(failure as Error).stack}`;
    expect(rendered).not.toContain("T0K3N");
    expect(withToken.label).not.toContain("T0K3N");
    expect(withToken.id).not.toContain("T0K3N");
    await withToken.close();

    const withUser = createBackend(`ipfs://alice:pa55@127.0.0.1:${port}`);
    seen.length = 0;
    await withUser.open();
    expect(seen[0]?.authorization).toBe(`Basic ${Buffer.from("alice:pa55").toString("base64")}`);
    await withUser.close();
  });

  it("a bare 502 from a proxy is a retryable unavailability", async () => {
    await expect(backend.pins.pin(cid, { name: QUASAR_PIN_NAME })).rejects.toBeInstanceOf(
      BackendUnavailableError,
    );
  });
});
