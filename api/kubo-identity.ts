import { arch, platform } from "node:process";

/**
 * What Quasar's Kubo mount answers to `version` and `id`. Quasar is not a Kubo node, so
 * neither answer can be Kubo's; both keep the exact shape Kubo 0.43 answers (same keys, same
 * JSON types), so stock clients (kubo-rpc-client's `version()`, `id()`) work unchanged.
 */

/** The Kubo release whose RPC answers test/kubo-compat.test.ts checks the mount against. */
export const KUBO_RPC_VERSION = "0.43.1";

/**
 * `version`: Kubo's version this mount follows, with "+quasar" as semver build metadata.
 * Clients that gate features on the version compare it equal to 0.43.1 (build metadata does
 * not count in semver precedence; Quasar's own Kubo backend reads `0.43` from it), and a
 * person reading it sees it is not a Kubo daemon. Quasar has no Kubo repo or Go runtime:
 * `Commit`, `Repo` and `Golang` are empty strings (their type kept), `System` is Go's name
 * for the platform Quasar runs on.
 */
export function kuboVersion(): {
  Version: string;
  Commit: string;
  Repo: string;
  System: string;
  Golang: string;
} {
  return {
    Version: `${KUBO_RPC_VERSION}+quasar`,
    Commit: "",
    Repo: "",
    System: `${GO_ARCH[arch] ?? arch}/${platform}`,
    Golang: "",
  };
}

const GO_ARCH: Partial<Record<string, string>> = { x64: "amd64", ia32: "386", arm64: "arm64" };

/**
 * `id`: Quasar is not a peer, so it has no peer ID of its own, and answering one of its
 * backends' would publish internal topology and tie clients to a node that may change. It
 * answers a placeholder: the peer ID of the all-zero Ed25519 public key, a valid ID that no
 * node can prove it holds (its private key is a discrete logarithm nobody knows), so no
 * client ever dials anyone through it. `Addresses` and `Protocols` are null, as an offline
 * Kubo answers them; `AgentVersion` names Quasar. A unit test derives the ID from the key.
 */
export const KUBO_ID = {
  ID: "12D3KooW9pNAk8aiBuGVQtWRdbkLmo5qVL3e2h5UxbN2Nz9ttwiw",
  PublicKey: "CAESIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
  Addresses: null,
  AgentVersion: "quasar",
  Protocols: null,
} as const;
