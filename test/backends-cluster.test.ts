import { randomBytes } from "node:crypto";
import { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Backend,
  BackendRequestError,
  createBackend,
  QUASAR_PIN_NAME,
} from "@/backends/index.js";
import { describePinConformance } from "@/backends/pin-conformance.js";
import { type ClusterPeer, startCluster, type TestCluster } from "./harness/cluster.js";

/** Adds bytes to a peer's Kubo without pinning them (the cluster pins, or nobody). */
async function addUnpinned(peer: ClusterPeer, bytes: Uint8Array): Promise<CID> {
  const answer = await peer.kuboRpc(
    "add",
    { pin: "false", "cid-version": "1" },
    { field: "file", bytes },
  );
  return CID.parse((JSON.parse(answer) as { Hash: string }).Hash);
}

/** Pins through the cluster's REST API directly, as another user of the cluster would. */
async function pinForeign(peer: ClusterPeer, cid: CID, name = "someone-else"): Promise<void> {
  const answer = await peer.rest("POST", `/pins/${cid}`, { name });
  expect(answer.status).toBe(200);
  // Wait for the peer's tracker, as that user's own client would.
  for (let i = 0; i < 100; i++) {
    const status = await peer.rest("GET", `/pins/${cid}`);
    if (status.text.includes('"pinned"')) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`foreign pin of ${cid} never became pinned`);
}

describePinConformance(
  "IPFS Cluster (one peer, its own Kubo, in a network namespace)",
  async () => {
    const cluster = await startCluster({ peers: 1 });
    const [peer] = cluster.peers as [ClusterPeer];
    return {
      pins: createBackend(cluster.connectionString()).pins,
      storeFile: (bytes) => addUnpinned(peer, bytes),
      async storeDag(value) {
        const answer = await peer.kuboRpc(
          "dag/put",
          { pin: "false" },
          { field: "file", bytes: new TextEncoder().encode(JSON.stringify(value)) },
        );
        return CID.parse((JSON.parse(answer) as { Cid: { "/": string } }).Cid["/"]);
      },
      async pinForeign(bytes) {
        const cid = await addUnpinned(peer, bytes);
        await pinForeign(peer, cid);
        return cid.toV1();
      },
      cleanup: () => cluster.destroy(),
    };
  },
);

describe("IPFS Cluster backend (one peer, basic auth)", () => {
  let cluster: TestCluster;
  let peer: ClusterPeer;
  let backend: Backend;
  const credentials = { quasar: `pw-${randomBytes(6).toString("hex")}` };

  beforeAll(async () => {
    cluster = await startCluster({ peers: 1, basicAuth: credentials });
    peer = cluster.peers[0] as ClusterPeer;
    const url = new URL(peer.restUrl);
    backend = createBackend(
      `cluster+http://quasar:${credentials.quasar}@${url.host}?replication-min=1&replication-max=1`,
    );
    await backend.open();
  });
  afterAll(async () => {
    await backend?.close();
    await cluster?.destroy();
  });

  it("runs inside a namespace with no route out of it", async () => {
    const routes = await cluster.ns.routes();
    expect(routes).not.toMatch(/default/);
    expect(routes.trim().split("\n")).toHaveLength(1);
    expect(routes).toContain(`${cluster.ns.address.replace(/\.2$/, ".0")}/30`);
  });

  it("keeps the password out of the id and the label", () => {
    expect(backend.id).toMatch(/^cluster-[0-9a-f]{12}$/);
    expect(backend.label).not.toContain(credentials.quasar);
    expect(backend.id).toBe(createBackend(`cluster+http://${new URL(peer.restUrl).host}`).id);
  });

  it("lists nothing on an empty cluster (204)", async () => {
    expect((await peer.rest("GET", "/pins")).status).toBe(204);
    const listed = [];
    for await (const pin of backend.pins.listPins({})) listed.push(pin);
    expect(listed).toEqual([]);
  });

  it("pins with Quasar's name, metadata mark, replication factors and mode; unpins", async () => {
    const cid = await addUnpinned(peer, randomBytes(1000));
    const copies: number[] = [];
    await backend.pins.pin(cid, { name: QUASAR_PIN_NAME, onCopies: (n) => copies.push(n) });
    expect(copies).toEqual([1]);
    const allocation = JSON.parse((await peer.rest("GET", `/allocations/${cid}`)).text) as {
      name: string;
      metadata: Record<string, string>;
      replication_factor_min: number;
      replication_factor_max: number;
      mode: string;
    };
    expect(allocation).toMatchObject({
      name: QUASAR_PIN_NAME,
      metadata: { quasar: "owned" },
      replication_factor_min: 1,
      replication_factor_max: 1,
      mode: "recursive",
    });
    // The peer's Kubo holds it recursively.
    expect(await peer.kuboRpc("pin/ls", { arg: cid.toString(), type: "recursive" })).toContain(
      cid.toString(),
    );
    const listing = await backend.pins.getPin(cid, {});
    expect(listing).toMatchObject({ name: QUASAR_PIN_NAME });
    const listed = [];
    for await (const pin of backend.pins.listPins({})) listed.push(pin);
    expect(listed).toContainEqual({ cid: cid.toV1(), name: QUASAR_PIN_NAME, copies: 1 });
    await backend.pins.unpin(cid, {});
    expect(await backend.pins.getPin(cid, {})).toBeUndefined();
    expect((await peer.rest("GET", `/allocations/${cid}`)).status).toBe(404);
    await backend.pins.unpin(cid, {});
  });

  it("never reports a foreign pin named like Quasar's as Quasar's", async () => {
    const cid = await addUnpinned(peer, randomBytes(500));
    await fetch(`${peer.restUrl}/pins/${cid}?name=${QUASAR_PIN_NAME}`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`quasar:${credentials.quasar}`).toString("base64")}`,
      },
    });
    const listing = await backend.pins.getPin(cid, {});
    expect(listing).toBeDefined();
    expect(listing?.name).toBeUndefined();
  });

  it("takes a Bearer JWT from the cluster's /token, and refuses a wrong password", async () => {
    const response = await fetch(`${peer.restUrl}/token`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`quasar:${credentials.quasar}`).toString("base64")}`,
      },
    });
    const { token } = (await response.json()) as { token: string };
    const host = new URL(peer.restUrl).host;
    const withToken = createBackend(`cluster+http://${host}?token=${token}`);
    expect(withToken.label).not.toContain(token);
    expect(withToken.id).toBe(backend.id);
    await withToken.open();
    expect(await withToken.ping()).toBe(true);
    await withToken.close();

    const wrong = createBackend(`cluster+http://quasar:wrong@${host}`);
    const failure = await wrong.open().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(BackendRequestError);
    expect(String(failure)).not.toContain("wrong");
    expect(await wrong.ping()).toBe(false);
  });
});
