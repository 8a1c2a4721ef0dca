import { createHash } from "node:crypto";
import { InvalidConnectionStringError } from "./errors.js";

/**
 * Connection strings name a backend: `<designator>[+<transport>]://<rest>`. The designator
 * picks the implementation; the rest is that implementation's business. Secrets (a `token`
 * query parameter, URL user info) are masked in every label and kept out of every id, so a
 * rotated token keeps the backend's id and its ledger.
 */

/** A connection string split into its parts. `rest` still holds secrets: never log it. */
export type SplitConnectionString = {
  designator: string;
  transport: string | undefined;
  rest: string;
};

/** Query parameters whose values are secrets. */
const SECRET_PARAMS = ["token", "access_token", "apikey", "api_key", "secret", "password"] as const;

const SHAPE = /^([a-z][a-z0-9-]*)(?:\+([a-z][a-z0-9-]*))?:\/\/(.*)$/i;

/**
 * Masks every secret in a connection string, even a malformed one: user info becomes `***`
 * and secret query values become `***`. Safe for logs, errors and API answers.
 */
export function maskConnectionString(raw: string): string {
  const secretParam = new RegExp(`([?&;](?:${SECRET_PARAMS.join("|")})=)[^&#;]*`, "gi");
  return (
    raw
      .replace(secretParam, "$1***")
      // user info: everything between "//" and the last "@" of the authority
      .replace(/^([^:/?#]*:\/\/)[^/?#]*@/, "$1***@")
  );
}

/** Splits `<designator>[+<transport>]://<rest>`; throws InvalidConnectionStringError naming the masked string. */
export function splitConnectionString(
  raw: string,
  acceptedForms: readonly string[],
): SplitConnectionString {
  const match = SHAPE.exec(raw.trim());
  if (!match) {
    throw new InvalidConnectionStringError(
      maskConnectionString(raw),
      'expected "<kind>[+<transport>]://…"',
      acceptedForms,
    );
  }
  const [, designator = "", transport, rest = ""] = match;
  return { designator: designator.toLowerCase(), transport: transport?.toLowerCase(), rest };
}

/**
 * A backend's id: designator plus a short hash of its canonical, secret-free description.
 * Equal for every spelling of the same endpoint, unchanged when a token rotates.
 */
export function backendId(designator: string, canonical: string): string {
  return `${designator}-${createHash("sha256").update(canonical).digest("hex").slice(0, 12)}`;
}

/** An HTTP endpoint parsed from a connection string such as `ipfs+https://user:pw@host:5001/prefix?token=…`. */
export type HttpEndpoint = {
  /** Base URL without secrets and without a trailing slash: `https://host:5001/prefix`. */
  baseUrl: URL;
  /** `Authorization` header value, when a token or user info was given. A secret. */
  authorization: string | undefined;
  /** Secret-free description that identifies the endpoint (for the id). */
  canonical: string;
};

/**
 * Parses the part after `://` of an HTTP-based backend. `defaultPort` applies when the
 * string names none. Unknown query parameters are refused so a typo never passes silently.
 */
export function parseHttpEndpoint(params: {
  raw: string;
  designator: string;
  transport: "http" | "https";
  rest: string;
  defaultPort: number;
  allowedParams: readonly string[];
  /** Parameters that change how Quasar uses the endpoint, not which one it is: kept out of the id. */
  optionParams?: readonly string[];
  acceptedForms: readonly string[];
}): HttpEndpoint & { params: URLSearchParams } {
  const { raw, designator, transport, rest, defaultPort, allowedParams, acceptedForms } = params;
  const optionParams = params.optionParams ?? [];
  const known = [...allowedParams, ...optionParams];
  const fail = (reason: string): never => {
    throw new InvalidConnectionStringError(maskConnectionString(raw), reason, acceptedForms);
  };
  let url: URL;
  try {
    url = new URL(`${transport}://${rest}`);
  } catch {
    return fail("not a valid URL after the scheme");
  }
  if (url.hostname === "") fail("no host");
  if (url.hash !== "") fail("a #fragment is not allowed");
  const query = new URLSearchParams(url.search);
  const token = query.get("token");
  query.delete("token");
  for (const key of query.keys()) {
    if (!known.includes(key)) {
      fail(
        `unknown parameter "${key}"${known.length > 0 ? ` (known: token, ${known.join(", ")})` : " (only token is known)"}`,
      );
    }
  }
  if (token === "") fail("token is empty");
  const username = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  let authorization: string | undefined;
  if (token !== null) authorization = `Bearer ${token}`;
  else if (username !== "" || password !== "") {
    authorization = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  }
  // URL drops a port equal to the scheme's default (https://host:443), so read the authority.
  const authority = (rest.split(/[/?#]/, 1)[0] ?? "").replace(/^.*@/, "");
  const explicitPort = /:(\d+)$/.exec(authority)?.[1];
  const port = explicitPort === undefined ? defaultPort : Number(explicitPort);
  const path = url.pathname.replace(/\/+$/, "");
  const baseUrl = new URL(`${transport}://${url.hostname}:${port}${path}`);
  query.sort();
  const identifying = new URLSearchParams(query);
  for (const key of optionParams) identifying.delete(key);
  const search = identifying.toString();
  const canonical = `${designator}+${transport}://${url.hostname}:${port}${path}${search ? `?${search}` : ""}`;
  return { baseUrl, authorization, canonical, params: query };
}

/** Reads a boolean query parameter ("true"/"false"/"1"/"0"); undefined when absent. */
export function booleanParam(
  query: URLSearchParams,
  key: string,
  fail: (reason: string) => never,
): boolean | undefined {
  const value = query.get(key);
  if (value === null) return undefined;
  if (value === "true" || value === "1" || value === "") return true;
  if (value === "false" || value === "0") return false;
  return fail(`parameter ${key} must be true or false, got "${value}"`);
}
