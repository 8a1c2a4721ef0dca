import { SECRET_SETTINGS, type SettingName } from "./config/schema.js";

/**
 * Masking of secret settings for `config check`, logs and status output. Masks keep what
 * an operator needs to recognise a value (scheme, host, port, database, chain ids) and hide
 * what grants access (passwords, tokens, API keys in RPC paths or query strings).
 */

export const MASK = "****";

/** A URL with its userinfo password, query values and token-like path segments masked. */
export function maskUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return MASK;
  }
  if (url.password) url.password = MASK;
  // A lone userinfo without password is often a token (https://<token>@host).
  else if (url.username && !/^(postgres|quasar|[a-z_][a-z0-9_]{0,30})$/.test(url.username)) {
    url.username = MASK;
  }
  for (const key of [...url.searchParams.keys()]) url.searchParams.set(key, MASK);
  // Provider keys ride in the path: /v3/<key> (Infura), /v2/<key> (Alchemy).
  url.pathname = url.pathname
    .split("/")
    .map((segment) => (/^[A-Za-z0-9_-]{16,}$/.test(segment) ? MASK : segment))
    .join("/");
  // URL re-encodes the mask inside query values; keep it readable.
  return url.toString().replaceAll("%2A%2A%2A%2A", MASK);
}

/** The display form of one setting's raw (string) value: masked when the setting is secret. */
export function maskSetting(name: SettingName, raw: string): string {
  if (!SECRET_SETTINGS.has(name)) return raw;
  if (raw === "") return "";
  switch (name) {
    case "DATABASE_URL":
      return maskUrl(raw);
    case "QUASAR_BACKENDS":
      return raw
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item.length > 0)
        .map(maskBackend)
        .join(",");
    case "QUASAR_CHAINS":
      return maskChains(raw);
    default: {
      const count = raw.split(",").filter((item) => item.trim().length > 0).length;
      return count > 1 ? `${MASK} (${count} values)` : MASK;
    }
  }
}

function maskBackend(connection: string): string {
  // helia://<path> carries no secret, and its path is not a URL authority worth parsing.
  if (/^helia:/i.test(connection)) return connection;
  return maskUrl(connection);
}

function maskChains(raw: string): string {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed)) return MASK;
    return JSON.stringify(
      parsed.map((chain: unknown) => {
        if (typeof chain !== "object" || chain === null) return MASK;
        const record = chain as Record<string, unknown>;
        if (typeof record.rpc === "string") return { ...record, rpc: maskUrl(record.rpc) };
        // Several URLs (fallbacks): each masked; anything else is not shown at all.
        if (Array.isArray(record.rpc))
          return {
            ...record,
            rpc: record.rpc.map((url) => (typeof url === "string" ? maskUrl(url) : MASK)),
          };
        return "rpc" in record ? { ...record, rpc: MASK } : record;
      }),
    );
  } catch {
    return MASK;
  }
}
