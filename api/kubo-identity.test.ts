import { publicKeyFromRaw, publicKeyToProtobuf } from "@libp2p/crypto/keys";
import { peerIdFromPublicKey, peerIdFromString } from "@libp2p/peer-id";
import { describe, expect, it } from "vitest";
import { KUBO_ID, kuboVersion } from "./kubo-identity.js";

describe("the Kubo mount's version and id", () => {
  it("id is the peer ID of the all-zero Ed25519 key, which parses as a peer ID", () => {
    const key = publicKeyFromRaw(new Uint8Array(32));
    expect(KUBO_ID.ID).toBe(peerIdFromPublicKey(key).toString());
    expect(KUBO_ID.PublicKey).toBe(Buffer.from(publicKeyToProtobuf(key)).toString("base64"));
    expect(peerIdFromString(KUBO_ID.ID).type).toBe("Ed25519");
  });

  it("version is Kubo's with +quasar build metadata, every field a string", () => {
    const version = kuboVersion();
    expect(version.Version).toMatch(/^0\.43\.1\+quasar$/);
    for (const value of Object.values(version)) expect(typeof value).toBe("string");
    expect(version.System).toMatch(/^[a-z0-9]+\/[a-z0-9]+$/);
  });
});
