import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type ContentCapableBackend,
  createBackend,
  QUASAR_PIN_NAME,
  requireContent,
} from "@/backends/index.js";
import { kuboNamesPins } from "@/backends/kubo/index.js";

/**
 * The Kubo dialect (pin names as `name`, `names=true` listings, `add --pin-name`, streamed
 * pin progress, "offline" misses) against a local server that answers in Kubo's RPC wire
 * format, which records the requests the backend makes (how many calls, which parameters)
 * and plays an older Kubo (0.32). The same behaviour on a real Kubo 0.43 is tested in
 * backends.test.ts and reconciler-kubo.test.ts; every answer below is Kubo's shape.
 */
describe("Kubo RPC dialect", () => {
  let server: Server;
  let backend: ContentCapableBackend;
  const requests: URL[] = [];
  const pinned = "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi";
  const missing = "bafkreiblaotdp3jz5y5b6dsvyrqchw6ntrtxj2q7x2ijpytrwv5hpbj3rq";

  const kuboError = (res: import("node:http").ServerResponse, message: string) => {
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ Message: message, Code: 0, Type: "error" }));
  };

  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? "/", "http://kubo");
      requests.push(url);
      req.resume();
      const json = (value: unknown) => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(value));
      };
      switch (url.pathname) {
        case "/api/v0/version":
          return json({
            Version: "0.32.1",
            Commit: "",
            Repo: "16",
            System: "amd64/linux",
            Golang: "go1.23.3",
          });
        case "/api/v0/id":
          return json({ ID: "12D3KooW", Addresses: [] });
        case "/api/v0/pin/add": {
          res.writeHead(200, { "content-type": "application/json", Trailer: "X-Stream-Error" });
          for (const progress of [1, 2, 3])
            res.write(`${JSON.stringify({ Progress: progress })}\n`);
          res.end(`${JSON.stringify({ Pins: [url.searchParams.get("arg")], Progress: 3 })}\n`);
          return;
        }
        case "/api/v0/pin/ls": {
          if (url.searchParams.get("arg") === missing)
            return kuboError(res, `path '${missing}' is not pinned`);
          res.writeHead(200, { "content-type": "application/json", Trailer: "X-Stream-Error" });
          res.write(
            `${JSON.stringify({ Cid: pinned, Name: QUASAR_PIN_NAME, Type: "recursive" })}\n`,
          );
          if (!url.searchParams.has("arg")) {
            res.write(
              `${JSON.stringify({ Cid: "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn", Name: "", Type: "recursive" })}\n`,
            );
          }
          res.end();
          return;
        }
        case "/api/v0/pin/rm":
          return kuboError(res, "not pinned or pinned indirectly");
        case "/api/v0/block/stat":
          return kuboError(
            res,
            `block was not found locally (offline): ipld: could not find ${missing}`,
          );
        case "/api/v0/add":
          res.writeHead(200, { "content-type": "application/json", Trailer: "X-Stream-Error" });
          res.end(`${JSON.stringify({ Name: "file", Hash: missing, Size: "12" })}\n`);
          return;
        default:
          res.writeHead(404);
          res.end("404 page not found");
      }
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    backend = requireContent(
      createBackend(`ipfs+http://127.0.0.1:${(server.address() as AddressInfo).port}`),
      "be tested",
    );
    await backend.open();
  });

  afterAll(async () => {
    await backend?.close();
    server?.closeAllConnections();
    server?.close();
  });

  it("pins with a name and reports streamed progress", async () => {
    const progress: number[] = [];
    requests.length = 0;
    await backend.pins.pin(CID.parse(pinned), {
      name: QUASAR_PIN_NAME,
      onProgress: (blocks) => progress.push(blocks),
    });
    expect(progress).toEqual([1, 2, 3]);
    const call = requests.find((url) => url.pathname === "/api/v0/pin/add");
    expect(call?.searchParams.get("name")).toBe(QUASAR_PIN_NAME);
    expect(call?.searchParams.get("recursive")).toBe("true");
    expect(call?.searchParams.get("progress")).toBe("true");
    expect(call?.searchParams.has("metadata")).toBe(false);
  });

  it("lists recursive pins streamed with their names, v0 CIDs as v1", async () => {
    requests.length = 0;
    const pins = [];
    for await (const pin of backend.pins.listPins({}))
      pins.push({ cid: pin.cid.toString(), name: pin.name });
    expect(pins).toEqual([
      { cid: pinned, name: QUASAR_PIN_NAME },
      {
        cid: CID.parse("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn").toV1().toString(),
        name: undefined,
      },
    ]);
    const call = requests.find((url) => url.pathname === "/api/v0/pin/ls");
    expect(call?.searchParams.get("type")).toBe("recursive");
    expect(call?.searchParams.get("stream")).toBe("true");
    expect(call?.searchParams.get("names")).toBe("true");
  });

  it("answers getPin, unpin and hasBlock from Kubo's error messages", async () => {
    expect((await backend.pins.getPin(CID.parse(pinned), {}))?.name).toBe(QUASAR_PIN_NAME);
    expect(await backend.pins.getPin(CID.parse(missing), {})).toBeUndefined();
    await backend.pins.unpin(CID.parse(missing), {}); // "not pinned or pinned indirectly" is success
    requests.length = 0;
    expect(await backend.content.hasBlock(CID.parse(missing), {})).toBe(false);
    expect(requests[0]?.searchParams.get("offline")).toBe("true");
  });

  it("adds a file pinned with Kubo's pin-name in one call", async () => {
    requests.length = 0;
    async function* content() {
      yield new TextEncoder().encode("hello world!");
    }
    const added = await backend.content.addFile(content(), { name: QUASAR_PIN_NAME });
    expect(added).toEqual({ cid: CID.parse(missing), size: 12, dagSize: 12 });
    const call = requests.find((url) => url.pathname === "/api/v0/add");
    expect(call?.searchParams.get("pin")).toBe("true");
    expect(call?.searchParams.get("pin-name")).toBe(QUASAR_PIN_NAME);
    // Kubo's own add defaults, spelt out: the CID must not depend on the daemon's config.
    expect(call?.searchParams.get("cid-version")).toBe("0");
    expect(call?.searchParams.get("raw-leaves")).toBe("false");
    expect(call?.searchParams.get("chunker")).toBe("size-262144");
    expect(call?.searchParams.get("hash")).toBe("sha2-256");
    expect(requests.some((url) => url.pathname === "/api/v0/pin/add")).toBe(false);
  });

  it("adds a file without any pin when asked (pin: false)", async () => {
    requests.length = 0;
    async function* content() {
      yield new TextEncoder().encode("hello world!");
    }
    const added = await backend.content.addFile(content(), { name: QUASAR_PIN_NAME, pin: false });
    expect(added).toEqual({ cid: CID.parse(missing), size: 12, dagSize: 12 });
    const call = requests.find((url) => url.pathname === "/api/v0/add");
    expect(call?.searchParams.get("pin")).toBe("false");
    expect(call?.searchParams.has("pin-name")).toBe(false);
    expect(requests.some((url) => url.pathname === "/api/v0/pin/add")).toBe(false);
  });

  it("trusts pin names from Kubo 0.26 on, where pins carry them", async () => {
    expect(await backend.pins.storesPinNames({})).toBe(true);
    expect(
      ["0.25.0", "0.26.0", "0.32.1", "1.0.0", "0.9.1", "nightly"].map((v) => kuboNamesPins(v)),
    ).toEqual([false, true, true, true, false, false]);
  });
});
