import type { Backend } from "../backend.js";
import { createClusterClient } from "./client.js";
import type { ClusterBackendParams } from "./connection-string.js";
import { createClusterPins } from "./pins.js";

/**
 * An IPFS Cluster (`cluster+http://…`): the pin role only. Cluster replicates each pin over
 * its peers' IPFS daemons; bytes reach it from a content backend (the API's uploads) or as a
 * CAR through `POST /add?format=car` when the engine copies one in. Notes: backends/README.md.
 */
export function createClusterBackend(params: ClusterBackendParams): Backend {
  const client = createClusterClient(params);
  return { ...client.lifecycle, pins: createClusterPins(client) };
}

export {
  CLUSTER_FORMS,
  type ClusterBackendParams,
  parseClusterConnectionString,
} from "./connection-string.js";
