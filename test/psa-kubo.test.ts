import { execFile } from "node:child_process";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { serve } from "@hono/node-server";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "@/api/app.js";
import { createApiStore } from "@/api/store.js";
import { loadConfig } from "@/core/config/load.js";
import { type KuboDaemon, startKubo } from "./harness/kubo.js";
import { toolPath } from "./harness/tools.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

/**
 * Real Kubo as the Pinning Service API client (`ipfs pin remote …`) against Quasar's served
 * API, with the real reconciler pinning on that same Kubo daemon (offline: `pin remote` still
 * talks HTTP to us, and the content is added to the daemon first so our backend can pin it).
 */

const KEY = "psa-kubo-key";
const OTHER = "psa-kubo-other";

describe("Kubo's `ipfs pin remote` against Quasar's Pinning Service API", () => {
  let kubo: KuboDaemon;
  let engine: EngineFixture;
  let url: string;
  let close: () => Promise<void>;

  const ipfs = async (...args: string[]) => {
    const { stdout } = await promisify(execFile)(toolPath("ipfs"), args, {
      env: { ...process.env, IPFS_PATH: kubo.repoPath },
      timeout: 60_000,
    });
    return stdout;
  };
  const addUnpinned = async (text: string) => {
    const answer = await kubo.rpc(
      "add",
      { pin: "false", "cid-version": "1" },
      { field: "file", bytes: new TextEncoder().encode(text) },
    );
    return (JSON.parse(answer) as { Hash: string }).Hash;
  };
  const pinnedOnKubo = async (cid: string) => {
    const answer = await kubo.rpc("pin/ls", { type: "recursive", stream: "true" });
    return answer.includes(cid);
  };

  beforeAll(async () => {
    kubo = await startKubo();
    engine = await createEngineFixture({ backends: [kubo.connectionString] });
    const config = loadConfig({
      QUASAR_RECONCILER_SCHEMA: engine.reconcilerSchema,
      QUASAR_API_KEYS: `${KEY},${OTHER}`,
      QUASAR_RATE_LIMIT: "0",
    });
    const app = createApp({
      config,
      backends: engine.backends,
      store: createApiStore({
        db: engine.db,
        reconcilerSchema: engine.reconcilerSchema,
        ttlMs: config.QUASAR_PIN_TTL,
      }),
      logger: pino({ level: "silent" }),
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    close = () => new Promise<void>((resolve) => server.close(() => resolve()));
    await ipfs("pin", "remote", "service", "add", "quasar", `${url}/psa`, KEY);
  }, 120_000);
  afterAll(async () => {
    await close?.();
    await engine?.close();
    await kubo?.destroy();
  });

  it("add waits until pinned; ls by status, cid and name; service ls --stat; rm", async () => {
    const cid = await addUnpinned("pinned through ipfs pin remote");
    await ipfs("pin", "remote", "add", "--service=quasar", "--name=doc-one", cid);
    // Kubo returned only once the request was pinned: Quasar's reconciler pinned it on Kubo.
    expect(await pinnedOnKubo(cid)).toBe(true);

    const pinned = await ipfs("pin", "remote", "ls", "--service=quasar");
    expect(pinned).toContain(cid);
    expect(pinned).toContain("doc-one");
    for (const status of ["queued", "pinning", "failed"]) {
      expect(
        await ipfs("pin", "remote", "ls", "--service=quasar", `--status=${status}`),
      ).not.toContain(cid);
    }
    expect(await ipfs("pin", "remote", "ls", "--service=quasar", `--cid=${cid}`)).toContain(cid);
    expect(await ipfs("pin", "remote", "ls", "--service=quasar", "--name=doc-one")).toContain(cid);
    expect(await ipfs("pin", "remote", "ls", "--service=quasar", "--name=other")).not.toContain(
      cid,
    );

    const stat = await ipfs("pin", "remote", "service", "ls", "--stat");
    // queued/pinning/pinned/failed, from four `GET /pins?limit=1&status=X`.
    expect(stat.trim()).toBe(`quasar ${url}/psa 0/0/1/0`);

    await ipfs("pin", "remote", "rm", "--service=quasar", `--cid=${cid}`);
    expect(
      await ipfs(
        "pin",
        "remote",
        "ls",
        "--service=quasar",
        "--status=queued,pinning,pinned,failed",
      ),
    ).not.toContain(cid);
    // No request holds it any more: the reconciler releases Quasar's own pin.
    expect(await engine.until(async () => !(await pinnedOnKubo(cid)))).toBe(true);
  }, 120_000);

  it("paging: ls lists more requests than one page (Kubo asks 10 at a time, by before)", async () => {
    const cids: string[] = [];
    for (let i = 0; i < 23; i++) cids.push(await addUnpinned(`page ${i}`));
    for (const cid of cids) {
      const response = await fetch(`${url}/psa/pins`, {
        method: "POST",
        headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
        body: JSON.stringify({ cid, name: "paged" }),
      });
      expect(response.status).toBe(202);
      // The Kubo backend's addresses, each ending in /p2p/<its peer id> (Kubo aborts otherwise).
      const { delegates } = (await response.json()) as { delegates: string[] };
      expect(delegates.length).toBeGreaterThan(0);
      for (const delegate of delegates) expect(delegate).toMatch(/\/p2p\/[1-9A-Za-z]{46,}$/);
    }
    const listed = await ipfs(
      "pin",
      "remote",
      "ls",
      "--service=quasar",
      "--name=paged",
      "--status=queued,pinning,pinned,failed",
    );
    const found = cids.filter((cid) => listed.includes(cid));
    expect(found).toHaveLength(cids.length);
    expect(listed.trim().split("\n")).toHaveLength(cids.length);
    await ipfs(
      "pin",
      "remote",
      "rm",
      "--service=quasar",
      "--name=paged",
      "--status=queued,pinning,pinned,failed",
      "--force",
    );
    const after = await fetch(`${url}/psa/pins?name=paged&status=queued,pinning,pinned,failed`, {
      headers: { authorization: `Bearer ${KEY}` },
    });
    expect(((await after.json()) as { count: number }).count).toBe(0);
  }, 120_000);

  it("a raw CID nobody can fetch stays queued/pinning past an inactivity timeout, never failed", async () => {
    const { CID } = await import("multiformats/cid");
    const raw = await import("multiformats/codecs/raw");
    const { sha256 } = await import("multiformats/hashes/sha2");
    const absent = CID.create(
      1,
      raw.code,
      await sha256.digest(new TextEncoder().encode(`absent ${Date.now()}`)),
    );
    const response = await fetch(`${url}/psa/pins`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ cid: absent.toString() }),
    });
    const { requestid } = (await response.json()) as { requestid: string };
    const seen = new Set<string>();
    // The fixture's inactivity timeout is 3 s: the engine's first pin attempt gives up within
    // this window and retries; the pin deadline (24 h) is far away.
    const until = Date.now() + 5_000;
    while (Date.now() < until) {
      const status = await fetch(`${url}/psa/pins/${requestid}`, {
        headers: { authorization: `Bearer ${KEY}` },
      });
      seen.add(((await status.json()) as { status: string }).status);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect([...seen].filter((status) => status !== "queued" && status !== "pinning")).toEqual([]);
    // The engine did try and fail meanwhile: the ledger counts attempts and keeps the error.
    const row = await engine.row(
      engine.backends[0] as (typeof engine.backends)[number],
      absent.toV1().toString(),
    );
    expect(row?.attempts).toBeGreaterThan(0);
    expect(row?.status === "queued" || row?.status === "pinning").toBe(true);
    await fetch(`${url}/psa/pins/${requestid}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${KEY}` },
    });
  }, 60_000);

  it("removing one key's request never unpins what another key still wants", async () => {
    const cid = await addUnpinned("held by two keys");
    const other = await fetch(`${url}/psa/pins`, {
      method: "POST",
      headers: { authorization: `Bearer ${OTHER}`, "content-type": "application/json" },
      body: JSON.stringify({ cid }),
    });
    const otherId = ((await other.json()) as { requestid: string }).requestid;
    await ipfs("pin", "remote", "add", "--service=quasar", cid);
    expect(await pinnedOnKubo(cid)).toBe(true);
    await ipfs("pin", "remote", "rm", "--service=quasar", `--cid=${cid}`);
    // Give the reconciler several steps: it must keep the pin (the other key's request holds it).
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(await pinnedOnKubo(cid)).toBe(true);
    const gone = await fetch(`${url}/psa/pins/${otherId}`, {
      method: "DELETE",
      headers: { authorization: `Bearer ${OTHER}` },
    });
    expect(gone.status).toBe(202);
    expect(await engine.until(async () => !(await pinnedOnKubo(cid)))).toBe(true);
  }, 120_000);
});
