import { CID } from "multiformats/cid";
import { expect } from "vitest";
import { createBackend } from "@/backends/index.js";
import { describePinConformance } from "@/backends/pin-conformance.js";
import { type ClusterPeer, startCluster } from "./harness/cluster.js";

/**
 * The `psa+http` backend against IPFS Cluster's own Pinning Service API (`api.pinsvcapi`, no
 * auth), on the cluster fixture's one peer: the pin conformance suite, content arriving
 * through the peer's Kubo unpinned.
 */

async function addUnpinned(peer: ClusterPeer, bytes: Uint8Array): Promise<CID> {
  const answer = await peer.kuboRpc(
    "add",
    { pin: "false", "cid-version": "1" },
    { field: "file", bytes },
  );
  return CID.parse((JSON.parse(answer) as { Hash: string }).Hash);
}

describePinConformance("Pinning Service API (psa+http) into IPFS Cluster's pinsvcapi", async () => {
  const cluster = await startCluster({ peers: 1 });
  const [peer] = cluster.peers as [ClusterPeer];
  const url = cluster.pinningServiceUrl();
  return {
    pins: createBackend(`psa+http://${url.slice("http://".length)}`).pins,
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
      // Someone else's request on the same service, without Quasar's mark.
      const cid = await addUnpinned(peer, bytes);
      const response = await fetch(`${url}/pins`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ cid: cid.toString(), name: "someone-else" }),
      });
      expect(response.status).toBeLessThan(300);
      const { requestid } = (await response.json()) as { requestid: string };
      for (let i = 0; i < 200; i++) {
        const status = await fetch(`${url}/pins/${requestid}`);
        if (((await status.json()) as { status: string }).status === "pinned") return cid;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      throw new Error("the foreign request never became pinned");
    },
    cleanup: () => cluster.destroy(),
  };
});
