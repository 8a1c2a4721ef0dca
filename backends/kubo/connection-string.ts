import type { SplitConnectionString } from "../connection-string.js";
import {
  backendId,
  booleanParam,
  maskConnectionString,
  parseHttpEndpoint,
} from "../connection-string.js";
import { InvalidConnectionStringError } from "../errors.js";

/**
 * `ipfs://host:port`, `ipfs+http://host:port`, `ipfs+https://host:port[/prefix]`: a Kubo RPC
 * node (or anything speaking its RPC, such as js-ipfs). `ipfs://` means plain HTTP; the port
 * defaults to 5001; a path prefix is kept in front of `/api/v0`. `?token=` is sent as
 * `Authorization: Bearer <token>`; user info (`user:password@`) as basic auth.
 */
export const KUBO_FORMS = [
  "ipfs://host:port",
  "ipfs+http://host:port",
  "ipfs+https://host:port[/prefix][?token=…][&exclusive=true]",
] as const;

/** Settings of one Kubo RPC backend. `authorization` is a secret. */
export type KuboBackendParams = {
  baseUrl: URL;
  authorization: string | undefined;
  id: string;
  label: string;
  /** The operator declares Quasar the node's only user (`?exclusive=true`): see PinBackend.exclusive. */
  exclusive?: boolean;
  /** How long hasBlock waits on daemons that ignore `offline=true` (js-ipfs) before answering false. */
  localCheckTimeoutMs?: number;
};

export function parseKuboConnectionString(
  raw: string,
  parts: SplitConnectionString,
  acceptedForms: readonly string[],
): KuboBackendParams {
  const transport = parts.transport ?? "http";
  if (transport !== "http" && transport !== "https") {
    throw new InvalidConnectionStringError(
      maskConnectionString(raw),
      `unknown transport "+${transport}" (ipfs takes +http or +https)`,
      acceptedForms,
    );
  }
  const endpoint = parseHttpEndpoint({
    raw,
    designator: "ipfs",
    transport,
    rest: parts.rest,
    defaultPort: 5001,
    allowedParams: [],
    optionParams: ["exclusive"],
    acceptedForms,
  });
  const exclusive = booleanParam(endpoint.params, "exclusive", (reason) => {
    throw new InvalidConnectionStringError(maskConnectionString(raw), reason, acceptedForms);
  });
  return {
    baseUrl: endpoint.baseUrl,
    authorization: endpoint.authorization,
    id: backendId("ipfs", endpoint.canonical),
    label: maskConnectionString(raw),
    exclusive: exclusive ?? false,
  };
}
