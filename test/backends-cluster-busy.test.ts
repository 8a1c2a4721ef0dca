/**
 * The cluster backend's pin while the cluster's status answers are unsure. Under load (the
 * 50,000-CID bench), a real Cluster 1.1.6 answered a pin Quasar had just made with no peer
 * reporting it in the pinset, and left CIDs out of `GET /pins?cids=` streams whose per-CID
 * look failed (naming the failure only in the X-Stream-Error trailer). Quasar took both for
 * "the pin left the pinset", failed the pin and deleted it. No real peer produces these on
 * demand, so this test scripts them: a stand-in for the REST API (plain node:http, Cluster's
 * wire format: NDJSON, the trailer, 404 for a CID outside the state) answers each look as
 * the test says. Everything above the wire is the real backend.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type Backend, createBackend, QUASAR_PIN_NAME } from "@/backends/index.js";

const PEER = "12D3KooWQuasarBusyPeerxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
type Look = "fail" | "unpinned" | "pinned";

let server: Server;
let backend: Backend;
/** What each coming status look answers, in order; "pinned" once the script is used up. */
let script: Look[] = [];
/** Whether the shared state holds the pin (GET /allocations/{cid}). */
let inState = true;
const calls: string[] = [];

function pinInfo(cid: string, status: string) {
  return {
    cid,
    name: QUASAR_PIN_NAME,
    allocations: [PEER],
    metadata: { quasar: "owned" },
    peer_map: { [PEER]: { peername: "busy", status, error: "" } },
  };
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://stand-in");
    calls.push(`${req.method} ${url.pathname}`);
    req.resume();
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === "/id") return json(200, { id: PEER, peername: "busy" });
    const cids = url.searchParams.get("cids");
    if (req.method === "GET" && url.pathname === "/pins" && cids) {
      const look = script.shift() ?? "pinned";
      res.writeHead(200, { "content-type": "application/x-ndjson", trailer: "X-Stream-Error" });
      if (look !== "fail") {
        for (const cid of cids.split(",")) res.write(`${JSON.stringify(pinInfo(cid, look))}\n`);
      }
      res.addTrailers({ "X-Stream-Error": look === "fail" ? "context deadline exceeded" : "" });
      return res.end();
    }
    const pinPath = /^\/pins\/([^/]+)$/.exec(url.pathname);
    if (req.method === "POST" && pinPath)
      return json(200, pinInfo(pinPath[1] as string, "pin_queued"));
    if (req.method === "DELETE" && pinPath) {
      inState = false;
      return json(200, pinInfo(pinPath[1] as string, "unpinned"));
    }
    const allocation = /^\/allocations\/([^/]+)$/.exec(url.pathname);
    if (req.method === "GET" && allocation) {
      if (inState) return json(200, pinInfo(allocation[1] as string, "pinned"));
      return json(404, { code: 404, message: "cid is not part of the global state" });
    }
    json(404, { code: 404, message: "not found" });
  });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = server.address() as AddressInfo;
  backend = createBackend(`cluster+http://127.0.0.1:${port}?replication-min=1`);
  await backend.open();
});

afterAll(async () => {
  await backend?.close();
  await new Promise((resolve) => server?.close(resolve));
});

async function freshCid(): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(crypto.getRandomValues(new Uint8Array(32))));
}

it("keeps waiting through failed looks and peers behind the state, then reports the pin made", async () => {
  inState = true;
  calls.length = 0;
  script = ["fail", "unpinned", "fail", "unpinned", "pinned"];
  await backend.pins.pin(await freshCid(), { name: QUASAR_PIN_NAME });
  // Never deleted: the pin stands.
  expect(calls.filter((call) => call.startsWith("DELETE"))).toEqual([]);
  expect(script).toEqual([]);
});

it("still fails, and removes its own pin, when the state no longer holds it", async () => {
  inState = true;
  calls.length = 0;
  script = ["unpinned"];
  inState = false;
  await expect(backend.pins.pin(await freshCid(), { name: QUASAR_PIN_NAME })).rejects.toThrow(
    /left the cluster's pinset/,
  );
  // The pin was this call's (the state lacked the CID before it): it is not left behind.
  expect(calls.filter((call) => call.startsWith("DELETE /pins/"))).toHaveLength(1);
});

it("gives up after a bounded number of unsure looks when no inactivity timeout runs", async () => {
  inState = true;
  calls.length = 0;
  script = Array.from({ length: 100 }, () => "fail" as Look);
  await expect(backend.pins.pin(await freshCid(), { name: QUASAR_PIN_NAME })).rejects.toThrow();
  const looks = calls.filter((call) => call === "GET /pins").length;
  expect(looks).toBeGreaterThan(1);
  expect(looks).toBeLessThan(100);
}, 60_000);
