import type { ContentCapableBackend } from "../backend.js";
import type { HeliaBackendParams } from "./connection-string.js";
import { createHeliaContent } from "./content.js";
import { createHeliaNode } from "./node.js";
import { createHeliaPins } from "./pins.js";

/**
 * An embedded helia node (`helia://…`), playing both roles over one node. Nothing starts
 * until open() or the first call. Notes on why it reads blocks itself: backends/README.md.
 */
export function createHeliaBackend(params: HeliaBackendParams): ContentCapableBackend {
  const node = createHeliaNode(params);
  return {
    ...node.lifecycle,
    pins: createHeliaPins(node),
    content: createHeliaContent(node),
  };
}

export {
  HELIA_FORMS,
  type HeliaBackendParams,
  parseHeliaConnectionString,
} from "./connection-string.js";
