import { CID } from "multiformats/cid";
import { isRecord } from "../kubo/rpc.js";
import { QUASAR_PIN_NAME } from "../pin-backend.js";

/**
 * Reading Cluster's GlobalPinInfo (`GET /pins`, `GET /pins/{cid}`): one pin with each peer's
 * tracker status in `peer_map`. Pure.
 */

/** The metadata key and value that mark a cluster pin as Quasar's (sent as `meta-quasar=owned`). */
export const QUASAR_META_KEY = "quasar";
export const QUASAR_META_VALUE = "owned";

/** Per-peer tracker statuses (api/types.go in ipfs-cluster 1.1.6). */
export type TrackerStatus =
  | "pinned"
  | "pinning"
  | "pin_queued"
  | "pin_error"
  | "unpinned"
  | "unpinning"
  | "unpin_queued"
  | "unpin_error"
  | "remote"
  | "unexpectedly_unpinned"
  | "cluster_error"
  | "sharded"
  | "undefined";

export type ClusterPinInfo = {
  cid: CID;
  /** The cluster pin's name ("" when none). */
  name: string;
  /** Quasar's metadata mark is on the pin: Quasar created it (or re-pinned it last). */
  ours: boolean;
  /** Each peer's tracker status, by peer id. */
  peers: Map<string, { status: TrackerStatus; error: string }>;
  /** Peers the pin is allocated to; empty when it goes to every peer (replication -1). */
  allocations: ReadonlySet<string>;
};

/** Statuses a peer reports for a CID in the cluster's shared state (any other: not pinned there). */
const IN_STATE: ReadonlySet<TrackerStatus> = new Set([
  "pinned",
  "pinning",
  "pin_queued",
  "pin_error",
  "remote",
  "unexpectedly_unpinned",
  "sharded",
]);
/** Errors Cluster repairs when asked (`POST /pins/{cid}/recover`). */
const RECOVERABLE: ReadonlySet<TrackerStatus> = new Set(["pin_error", "unexpectedly_unpinned"]);
const UNDER_WAY: ReadonlySet<TrackerStatus> = new Set(["pinning", "pin_queued"]);

/** Parses one GlobalPinInfo; undefined for a value that is not one. */
export function parsePinInfo(value: unknown): ClusterPinInfo | undefined {
  if (!isRecord(value) || typeof value.cid !== "string") return undefined;
  const peers = new Map<string, { status: TrackerStatus; error: string }>();
  if (isRecord(value.peer_map)) {
    for (const [peer, info] of Object.entries(value.peer_map)) {
      if (!isRecord(info)) continue;
      peers.set(peer, {
        status: (typeof info.status === "string" ? info.status : "undefined") as TrackerStatus,
        error: typeof info.error === "string" ? info.error : "",
      });
    }
  }
  const metadata = isRecord(value.metadata) ? value.metadata : {};
  const allocations = new Set(
    Array.isArray(value.allocations)
      ? value.allocations.filter((peer): peer is string => typeof peer === "string")
      : [],
  );
  return {
    allocations,
    cid: CID.parse(value.cid),
    name: typeof value.name === "string" ? value.name : "",
    ours: metadata[QUASAR_META_KEY] === QUASAR_META_VALUE,
    peers,
  };
}

/** Peers holding the whole DAG now: Quasar's copies count. */
export function copiesOf(info: ClusterPinInfo): number {
  let copies = 0;
  for (const { status } of info.peers.values()) if (status === "pinned") copies++;
  return copies;
}

/** Whether the CID is in the cluster's pinset (some peer tracks it as pinned or to be pinned). */
export function inPinset(info: ClusterPinInfo): boolean {
  for (const { status } of info.peers.values()) if (IN_STATE.has(status)) return true;
  return false;
}

/** Some peer failed to pin it, or lost it behind the cluster's back: a recover is due. */
export function needsRecovery(info: ClusterPinInfo): boolean {
  for (const { status } of info.peers.values()) if (RECOVERABLE.has(status)) return true;
  return false;
}

/**
 * Peers still to pin it: queued or pinning, or allocated (every peer, for a pin on all of
 * them) yet still reporting unpinned, which a peer does until the pin reaches its copy of
 * the shared state.
 */
export function underWay(info: ClusterPinInfo): number {
  let count = 0;
  for (const [peer, { status }] of info.peers) {
    if (UNDER_WAY.has(status)) count++;
    else if (
      (status === "unpinned" || status === "undefined") &&
      (info.allocations.size === 0 || info.allocations.has(peer))
    )
      count++;
  }
  return count;
}

/** The first peer error, for messages. */
export function firstError(info: ClusterPinInfo): string | undefined {
  for (const { status, error } of info.peers.values()) {
    if (RECOVERABLE.has(status) || status === "cluster_error") return error || status;
  }
  return undefined;
}

/**
 * The name Quasar's ownership rules see: QUASAR_PIN_NAME only when Quasar's metadata mark is
 * on the pin. A foreign pin merely named "quasar" must never pass for Quasar's.
 */
export function listingName(info: ClusterPinInfo): string | undefined {
  if (info.ours) return QUASAR_PIN_NAME;
  if (info.name === "" || info.name === QUASAR_PIN_NAME) return undefined;
  return info.name;
}
