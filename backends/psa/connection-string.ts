import type { SplitConnectionString } from "../connection-string.js";
import { backendId, maskConnectionString, parseHttpEndpoint } from "../connection-string.js";
import { InvalidConnectionStringError } from "../errors.js";

/**
 * `psa+https://host[:port]/path?token=…` (and `psa+http://…` for tests): an IPFS Pinning
 * Service API endpoint, the URL a user gives `ipfs pin remote service add` (without `/pins`).
 * `token` is the service's access token, sent as `Authorization: Bearer …`. `owner` (default
 * "quasar") marks this Quasar's requests in their `meta`, so two Quasar instances sharing one
 * account each delete only their own; it does not change the backend's id.
 */
export const PSA_FORMS = [
  "psa+https://host[:port]/path?token=…[&owner=…]",
  "psa+http://host[:port]/path?token=…",
] as const;

/** The meta key that marks a request as created by Quasar (its value is the owner). */
export const PSA_OWNER_META = "quasar-owner";

export type PsaBackendParams = {
  /** The API root, without `/pins`. */
  baseUrl: URL;
  /** A secret. */
  authorization: string | undefined;
  id: string;
  label: string;
  owner: string;
};

export function parsePsaConnectionString(
  raw: string,
  parts: SplitConnectionString,
  acceptedForms: readonly string[],
): PsaBackendParams {
  const transport = parts.transport;
  if (transport !== "http" && transport !== "https") {
    throw new InvalidConnectionStringError(
      maskConnectionString(raw),
      transport === undefined
        ? "psa needs +https (or +http for tests): psa+https://host/path?token=…"
        : `unknown transport "+${transport}" (psa takes +https or +http)`,
      acceptedForms,
    );
  }
  const endpoint = parseHttpEndpoint({
    raw,
    designator: "psa",
    transport,
    rest: parts.rest,
    defaultPort: transport === "https" ? 443 : 80,
    allowedParams: [],
    optionParams: ["owner"],
    acceptedForms,
  });
  const owner = endpoint.params.get("owner") ?? "quasar";
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(owner)) {
    throw new InvalidConnectionStringError(
      maskConnectionString(raw),
      "owner takes 1 to 64 letters, digits, dots, dashes or underscores",
      acceptedForms,
    );
  }
  return {
    baseUrl: endpoint.baseUrl,
    authorization: endpoint.authorization,
    id: backendId("psa", endpoint.canonical),
    label: maskConnectionString(raw),
    owner,
  };
}
