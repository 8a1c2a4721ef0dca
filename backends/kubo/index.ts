import type { ContentCapableBackend } from "../backend.js";
import { createKuboClient } from "./client.js";
import type { KuboBackendParams } from "./connection-string.js";
import { createKuboContent } from "./content.js";
import { createKuboPins } from "./pins.js";

/**
 * A Kubo RPC daemon (`ipfs://…`; js-ipfs speaks the same RPC), playing both roles over one
 * client. Nothing connects until open() or the first call. Dialect notes: backends/README.md.
 */
export function createKuboBackend(params: KuboBackendParams): ContentCapableBackend {
  const client = createKuboClient(params);
  const pins = createKuboPins(client);
  return {
    ...client.lifecycle,
    pins,
    content: createKuboContent(client, pins),
  };
}

export { kuboNamesPins } from "./client.js";
export {
  KUBO_FORMS,
  type KuboBackendParams,
  parseKuboConnectionString,
} from "./connection-string.js";
