import type { SplitConnectionString } from "../connection-string.js";
import {
  backendId,
  booleanParam,
  maskConnectionString,
  parseHttpEndpoint,
} from "../connection-string.js";
import { InvalidConnectionStringError } from "../errors.js";

/**
 * `cluster+http://host:9094`, `cluster+https://[user:pass@]host[:port][/prefix]`: the REST API
 * of one IPFS Cluster peer (port 9094 when omitted). `?token=` is sent as `Authorization:
 * Bearer` (a JWT from the cluster's `POST /token`); user info as basic auth.
 * `replication-min` / `replication-max` go with every pin (-1: every peer; absent: the
 * cluster's own defaults; a min alone is also the max, as Cluster refuses min > max). `origins` (comma-separated multiaddrs ending in `/p2p/<id>`) tells
 * the cluster's IPFS daemons where to fetch from. `concurrency` (default 128) is how many pins
 * Quasar keeps under way at once: each mostly waits on the cluster's trackers. None of these
 * parameters is part of the id.
 */
export const CLUSTER_FORMS = [
  "cluster+http://host:port",
  "cluster+https://[user:password@]host:port[/prefix][?token=…][&replication-min=N][&replication-max=M][&origins=…][&concurrency=128][&exclusive=true]",
] as const;

/** Settings of one IPFS Cluster backend. `authorization` is a secret. */
export type ClusterBackendParams = {
  baseUrl: URL;
  authorization: string | undefined;
  id: string;
  label: string;
  /** Sent with every pin; undefined leaves the cluster's configured default. -1 means every peer. */
  replicationMin: number | undefined;
  replicationMax: number | undefined;
  /** Multiaddrs (with `/p2p/<peer id>`) the cluster's IPFS daemons should fetch from. */
  origins: readonly string[];
  /** The operator declares Quasar the cluster's only user: see PinBackend.exclusive. */
  exclusive: boolean;
  /** Pins Quasar keeps under way at once (`?concurrency=`, default 128): see PinBackend.pinConcurrency. */
  concurrency: number;
};

const DEFAULT_CONCURRENCY = 128;

const OPTION_PARAMS = [
  "replication-min",
  "replication-max",
  "origins",
  "exclusive",
  "concurrency",
] as const;

export function parseClusterConnectionString(
  raw: string,
  parts: SplitConnectionString,
  acceptedForms: readonly string[],
): ClusterBackendParams {
  const fail = (reason: string): never => {
    throw new InvalidConnectionStringError(maskConnectionString(raw), reason, acceptedForms);
  };
  const transport = parts.transport ?? "http";
  if (transport !== "http" && transport !== "https") {
    fail(`unknown transport "+${transport}" (cluster takes +http or +https)`);
  }
  const endpoint = parseHttpEndpoint({
    raw,
    designator: "cluster",
    transport: transport as "http" | "https",
    rest: parts.rest,
    defaultPort: 9094,
    allowedParams: [],
    optionParams: OPTION_PARAMS,
    acceptedForms,
  });
  const factor = (key: string): number | undefined => {
    const value = endpoint.params.get(key);
    if (value === null) return undefined;
    if (!/^-?\d+$/.test(value) || Number(value) < -1) {
      return fail(`${key} must be a whole number >= -1 (-1: every peer), got "${value}"`);
    }
    return Number(value);
  };
  const replicationMin = factor("replication-min");
  // Cluster refuses min > max, and its default max (-1) is below any min: a min alone
  // brings its own max.
  const replicationMax = factor("replication-max") ?? replicationMin;
  if (
    replicationMin !== undefined &&
    replicationMax !== undefined &&
    replicationMin > replicationMax
  ) {
    fail(
      `replication-min (${replicationMin}) must not exceed replication-max (${replicationMax}; -1 means every peer)`,
    );
  }
  const origins = (endpoint.params.get("origins") ?? "")
    .split(",")
    .map((origin) => origin.trim())
    .filter((origin) => origin !== "");
  for (const origin of origins) {
    if (!origin.startsWith("/") || !origin.includes("/p2p/")) {
      fail(`origin "${origin}" must be a multiaddr ending in /p2p/<peer id>`);
    }
  }
  const exclusive = booleanParam(endpoint.params, "exclusive", fail);
  const concurrencyText = endpoint.params.get("concurrency");
  const concurrency = concurrencyText === null ? DEFAULT_CONCURRENCY : Number(concurrencyText);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 4_096) {
    fail(`concurrency must be a whole number from 1 to 4096, got "${concurrencyText}"`);
  }
  return {
    baseUrl: endpoint.baseUrl,
    authorization: endpoint.authorization,
    id: backendId("cluster", endpoint.canonical),
    label: maskConnectionString(raw),
    replicationMin,
    replicationMax,
    origins,
    exclusive: exclusive ?? false,
    concurrency,
  };
}
