import { resolve } from "node:path";
import { backendId, booleanParam, maskConnectionString } from "../connection-string.js";
import { InvalidConnectionStringError } from "../errors.js";

/**
 * `helia://<directory>[?offline=true]`: an embedded, in-process IPFS node keeping blocks in
 * `<directory>/blocks` (blockstore-fs) and pins and metadata in `<directory>/data`
 * (datastore-fs). Relative directories resolve from the working directory.
 *
 * Query parameters:
 * - `offline=true`: no libp2p, no bitswap, no gateways. Starts in milliseconds; pins of
 *   content that is not stored locally fail at once with ContentUnavailableError. For tests
 *   and machines without a network.
 * - default (`offline=false`): helia's default libp2p (bootstrap peers, DHT client, bitswap)
 *   plus trustless HTTP gateways, so a PinHash for content uploaded elsewhere is fetched.
 */
export const HELIA_FORMS = ["helia://<directory>", "helia://<directory>?offline=true"] as const;

/** Settings of one embedded helia node. */
export type HeliaBackendParams = {
  /** Absolute directory of the node's stores. */
  directory: string;
  offline: boolean;
  id: string;
  label: string;
};

/** Parses the part of `helia://…` after the scheme. */
export function parseHeliaConnectionString(
  raw: string,
  rest: string,
  acceptedForms: readonly string[],
): HeliaBackendParams {
  const fail = (reason: string): never => {
    throw new InvalidConnectionStringError(maskConnectionString(raw), reason, acceptedForms);
  };
  const queryAt = rest.indexOf("?");
  const path = decodeURIComponent(queryAt === -1 ? rest : rest.slice(0, queryAt));
  const query = new URLSearchParams(queryAt === -1 ? "" : rest.slice(queryAt + 1));
  if (path.trim() === "")
    fail("no directory (e.g. helia://.quasar/ipfs or helia:///var/lib/quasar)");
  for (const key of query.keys()) {
    if (key !== "offline") fail(`unknown parameter "${key}" (known: offline)`);
  }
  const offline = booleanParam(query, "offline", fail) ?? false;
  const directory = resolve(path);
  return {
    directory,
    offline,
    id: backendId("helia", `helia://${directory}${offline ? "?offline=true" : ""}`),
    label: maskConnectionString(raw),
  };
}
