import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  BackendRequestError,
  BackendUnavailableError,
  createBackend,
  QUASAR_PIN_NAME,
} from "@/backends/index.js";
import { describePinConformance } from "@/backends/pin-conformance.js";
import { PSA_OWNER_META } from "@/backends/psa/index.js";
import { type PsaProvider, startPsaProvider } from "./psa-provider.js";

/**
 * The `psa+http` backend: the pin conformance suite against a second Quasar's Pinning Service
 * API (one Quasar pinning into another), ownership by the request's mark, and a provider that
 * misbehaves (429, non-spec bodies), played by a small local HTTP server: no real provider
 * produces those answers on demand.
 */

describePinConformance("Pinning Service API (psa+http) into a second Quasar", async () => {
  const provider = await startPsaProvider();
  const backend = createBackend(
    `psa+http://${provider.url.replace("http://", "")}?token=${provider.key}`,
  );
  return {
    pins: backend.pins,
    storeFile: (bytes) => provider.addUnpinned(bytes),
    async storeDag(value) {
      const answer = await provider.kubo.rpc(
        "dag/put",
        { "store-codec": "dag-cbor", "input-codec": "dag-json", pin: "false" },
        { field: "file", bytes: new TextEncoder().encode(JSON.stringify(value)) },
      );
      const { CID } = await import("multiformats/cid");
      return CID.parse((JSON.parse(answer) as { Cid: { "/": string } }).Cid["/"]);
    },
    async pinForeign(bytes) {
      // Someone else's request on the same account: same token, no Quasar mark.
      const cid = await provider.addUnpinned(bytes);
      const response = await fetch(`${provider.url}/pins`, {
        method: "POST",
        headers: { authorization: `Bearer ${provider.key}`, "content-type": "application/json" },
        body: JSON.stringify({ cid: cid.toString(), name: "someone-else" }),
      });
      const { requestid } = (await response.json()) as { requestid: string };
      for (let i = 0; i < 200; i++) {
        const status = await fetch(`${provider.url}/pins/${requestid}`, {
          headers: { authorization: `Bearer ${provider.key}` },
        });
        if (((await status.json()) as { status: string }).status === "pinned") return cid;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error("the foreign request never became pinned");
    },
    cleanup: () => provider.close(),
  };
});

describe("psa+http: only Quasar's own requests are ever deleted", () => {
  let provider: PsaProvider;
  beforeAll(async () => {
    provider = await startPsaProvider();
  }, 120_000);
  afterAll(async () => {
    await provider?.close();
  });

  it("marks its requests; unpin deletes them and leaves the user's request of the same CID", async () => {
    const backend = createBackend(
      `psa+http://${provider.url.replace("http://", "")}?token=${provider.key}&owner=instance-a`,
    );
    await backend.open();
    const cid = await provider.addUnpinned(
      new TextEncoder().encode("shared between a user and Quasar"),
    );
    const user = await fetch(`${provider.url}/pins`, {
      method: "POST",
      headers: { authorization: `Bearer ${provider.key}`, "content-type": "application/json" },
      body: JSON.stringify({ cid: cid.toString(), name: "mine" }),
    });
    const userRequest = ((await user.json()) as { requestid: string }).requestid;
    await backend.pins.pin(cid, { name: QUASAR_PIN_NAME });
    const all = await fetch(`${provider.url}/pins?cid=${cid}&status=queued,pinning,pinned,failed`, {
      headers: { authorization: `Bearer ${provider.key}` },
    });
    const listed = (await all.json()) as {
      results: { requestid: string; pin: { meta: Record<string, string> } }[];
    };
    expect(listed.results).toHaveLength(2);
    expect(listed.results.find((r) => r.requestid !== userRequest)?.pin.meta).toEqual({
      [PSA_OWNER_META]: "instance-a",
    });
    // getPin answers Quasar's own request (its name), so the engine's ownership check holds.
    expect((await backend.pins.getPin(cid, {}))?.name).toBe(QUASAR_PIN_NAME);

    // Another Quasar (another owner) on the same account never deletes instance-a's request.
    const other = createBackend(
      `psa+http://${provider.url.replace("http://", "")}?token=${provider.key}&owner=instance-b`,
    );
    expect(other.id).toBe(backend.id);
    await other.pins.unpin(cid, {});
    expect((await backend.pins.getPin(cid, {}))?.name).toBe(QUASAR_PIN_NAME);

    await backend.pins.unpin(cid, {});
    const after = await fetch(
      `${provider.url}/pins?cid=${cid}&status=queued,pinning,pinned,failed`,
      {
        headers: { authorization: `Bearer ${provider.key}` },
      },
    );
    const left = (await after.json()) as { results: { requestid: string }[] };
    expect(left.results.map((r) => r.requestid)).toEqual([userRequest]);
    // The user's request still holds the content on the provider.
    expect(await provider.pinnedOnKubo(cid.toString())).toBe(true);
    await backend.close();
  }, 60_000);
});

describe("psa+http against a misbehaving provider (a local HTTP server plays it)", () => {
  type Handler = (req: IncomingMessage, res: ServerResponse) => void;
  let handler: Handler = (_, res) => res.end();
  let base = "";
  const server = createServer((req, res) => handler(req, res));
  const CID_TEXT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  const json = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };

  it("honours Retry-After on 429, then carries on", async () => {
    let calls = 0;
    const times: number[] = [];
    handler = (_, res) => {
      calls++;
      times.push(Date.now());
      if (calls === 1)
        return json(res, 429, { error: { reason: "RATE_LIMITED" } }, { "retry-after": "1" });
      json(res, 200, { count: 0, results: [] });
    };
    const backend = createBackend(`psa+http://${base}/api?token=t`);
    await backend.open();
    expect(calls).toBe(2);
    expect((times[1] ?? 0) - (times[0] ?? 0)).toBeGreaterThanOrEqual(950);
  });

  it.each<[string, unknown, RegExp]>([
    [
      "camelCase requestId",
      { requestId: "x", status: "queued", pin: { cid: CID_TEXT } },
      /camelCase requestId/,
    ],
    [
      "an unknown status",
      { requestid: "x", status: "pin_error", pin: { cid: CID_TEXT } },
      /not one of/,
    ],
    ["no pin", { requestid: "x", status: "queued" }, /pin\.cid is missing/],
  ])(
    "a non-spec PinStatus (%s) is a clear BackendRequestError, not a crash",
    async (_, body, message) => {
      handler = (req, res) => {
        if (req.method === "GET") return json(res, 200, { count: 0, results: [] });
        json(res, 202, body);
      };
      const backend = createBackend(`psa+http://${base}/api?token=t`);
      const { CID } = await import("multiformats/cid");
      const failure = await backend.pins
        .pin(CID.parse(CID_TEXT), { name: "quasar" })
        .catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(BackendRequestError);
      expect(String((failure as Error).message)).toMatch(message);
    },
  );

  it("HTML instead of JSON, a 401 and a 503 map onto the error tree", async () => {
    const backend = createBackend(`psa+http://${base}/api?token=t`);
    handler = (_, res) => {
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html>hello</html>");
    };
    await expect(backend.open()).rejects.toThrow(/not JSON/);
    handler = (_, res) =>
      json(res, 401, { error: { reason: "UNAUTHORIZED", details: "bad token" } });
    await expect(backend.open()).rejects.toBeInstanceOf(BackendRequestError);
    handler = (_, res) => json(res, 503, {});
    await expect(backend.open()).rejects.toBeInstanceOf(BackendUnavailableError);
    expect(await backend.ping()).toBe(false);
  });

  it("the token never appears in the backend's label or id", () => {
    const backend = createBackend(`psa+https://${base}/api?token=secret-token-123`);
    expect(backend.label).not.toContain("secret-token-123");
    expect(backend.id).toMatch(/^psa-[0-9a-f]{12}$/);
    expect(createBackend(`psa+https://${base}/api?token=rotated`).id).toBe(backend.id);
  });
});
