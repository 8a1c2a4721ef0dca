import { NAME_MATCHES, type NameMatch, PSA_STATUSES, type PsaStatus } from "@/db/psa/index.js";
import { checkCid } from "@/src/cid.js";
import { InvalidArgumentError } from "../errors.js";

/**
 * The Pinning Service API's inputs (spec v1.0.0), checked by hand so every refusal says
 * exactly which rule it broke: the `GET /pins` query and the `Pin` object of `POST /pins`.
 * Pure; table-tested in input.test.ts. Unknown query parameters are ignored, as the spec's
 * clients may send more than this version knows.
 */

export const MAX_NAME_LENGTH = 255;
export const MAX_CIDS_PER_QUERY = 10;
export const MAX_LIMIT = 1000;
export const DEFAULT_LIMIT = 10;
export const MAX_ORIGINS = 20;
export const MAX_MULTIADDR_LENGTH = 1024;
export const MAX_META_ENTRIES = 1000;
export const MAX_META_KEY_LENGTH = 255;
export const MAX_META_VALUE_LENGTH = 65_536;

/** The query of `GET /pins`, checked. */
export type PsaListQuery = {
  /** Normalised CIDv1s. */
  cids?: string[];
  name?: string;
  match: NameMatch;
  statuses: PsaStatus[];
  before?: Date;
  after?: Date;
  limit: number;
  meta?: Record<string, string>;
};

/** A `Pin` as posted, checked. */
export type PsaPinInput = {
  /** Normalised CIDv1 (what the ledger keys on). */
  cid: string;
  /** As given (answered back unchanged). */
  cidGiven: string;
  name: string | null;
  origins: string[];
  meta: Record<string, string>;
};

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})$/;

/**
 * An RFC 3339 instant in whole ms. `created` values are whole ms, so a finer `before` rounds
 * up and a finer `after` rounds down without changing which requests match.
 */
export function parseRfc3339(text: string, round: "up" | "down", what: string): Date {
  const match = RFC3339.exec(text);
  const fail = () => {
    throw new InvalidArgumentError(
      `${what} must be an RFC 3339 time, got ${JSON.stringify(text.slice(0, 64))}`,
    );
  };
  if (!match) return fail();
  const fraction = match[7] ?? "";
  const whole = `${match[1]}-${match[2]}-${match[3]}T${match[4]}:${match[5]}:${match[6]}${fraction ? `.${fraction.slice(0, 3).padEnd(3, "0")}` : ""}${(match[8] ?? "Z").toUpperCase()}`;
  const ms = Date.parse(whole);
  if (Number.isNaN(ms)) return fail();
  const finer = /[1-9]/.test(fraction.slice(3));
  return new Date(finer && round === "up" ? ms + 1 : ms);
}

function parseCidList(text: string): string[] {
  const parts = text.split(",").map((part) => part.trim());
  if (
    parts.length === 0 ||
    parts.length > MAX_CIDS_PER_QUERY ||
    parts.some((part) => part === "")
  ) {
    throw new InvalidArgumentError(`cid takes 1 to ${MAX_CIDS_PER_QUERY} CIDs, comma-separated`);
  }
  return [...new Set(parts.map((part) => checkedCid(part, "cid").cid))];
}

function checkedCid(text: string, what: string): { cid: string } {
  const check = checkCid(text);
  if (!check.valid) {
    throw new InvalidArgumentError(
      `${what} ${JSON.stringify(text.slice(0, 100))} is not a valid CID (${check.reason})`,
    );
  }
  return { cid: check.cid };
}

function checkedName(value: unknown, what: string): string {
  if (typeof value !== "string") throw new InvalidArgumentError(`${what} must be a string`);
  if ([...value].length > MAX_NAME_LENGTH) {
    throw new InvalidArgumentError(`${what} is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return value;
}

/** A string → string map within the spec's bounds. */
export function checkedMeta(value: unknown, what: string): Record<string, string> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new InvalidArgumentError(`${what} must be a JSON object of strings`);
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_META_ENTRIES) {
    throw new InvalidArgumentError(`${what} holds more than ${MAX_META_ENTRIES} entries`);
  }
  const out: Record<string, string> = {};
  for (const [key, item] of entries) {
    if (typeof item !== "string") {
      throw new InvalidArgumentError(`${what}.${key.slice(0, 64)} must be a string`);
    }
    if (key.length === 0 || key.length > MAX_META_KEY_LENGTH) {
      throw new InvalidArgumentError(`${what} keys are 1 to ${MAX_META_KEY_LENGTH} characters`);
    }
    if (item.length > MAX_META_VALUE_LENGTH) {
      throw new InvalidArgumentError(
        `${what} values are at most ${MAX_META_VALUE_LENGTH} characters`,
      );
    }
    out[key] = item;
  }
  return out;
}

/** Checks the query of `GET /pins` (first value of each parameter). */
export function parseListQuery(query: Readonly<Record<string, string | undefined>>): PsaListQuery {
  const out: PsaListQuery = { match: "exact", statuses: ["pinned"], limit: DEFAULT_LIMIT };
  if (query.cid !== undefined) out.cids = parseCidList(query.cid);
  if (query.name !== undefined) out.name = checkedName(query.name, "name");
  if (query.match !== undefined) {
    if (!(NAME_MATCHES as readonly string[]).includes(query.match)) {
      throw new InvalidArgumentError(`match must be one of ${NAME_MATCHES.join(", ")}`);
    }
    out.match = query.match as NameMatch;
  }
  if (query.status !== undefined) {
    const statuses = query.status.split(",").map((part) => part.trim());
    for (const status of statuses) {
      if (!(PSA_STATUSES as readonly string[]).includes(status)) {
        throw new InvalidArgumentError(
          `status takes a comma list of ${PSA_STATUSES.join(", ")}; got ${JSON.stringify(status.slice(0, 32))}`,
        );
      }
    }
    out.statuses = [...new Set(statuses as PsaStatus[])];
  }
  if (query.before !== undefined) out.before = parseRfc3339(query.before, "up", "before");
  if (query.after !== undefined) out.after = parseRfc3339(query.after, "down", "after");
  if (query.limit !== undefined) {
    if (
      !/^\d{1,7}$/.test(query.limit) ||
      Number(query.limit) < 1 ||
      Number(query.limit) > MAX_LIMIT
    ) {
      throw new InvalidArgumentError(`limit must be a whole number from 1 to ${MAX_LIMIT}`);
    }
    out.limit = Number(query.limit);
  }
  if (query.meta !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(query.meta);
    } catch {
      throw new InvalidArgumentError("meta must be a URL-encoded JSON object of strings");
    }
    out.meta = checkedMeta(parsed, "meta");
  }
  return out;
}

/** Checks a posted `Pin` object: `{cid, name?, origins?, meta?}`. */
export function parsePinInput(body: unknown): PsaPinInput {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new InvalidArgumentError("the body must be a Pin object: {cid, name?, origins?, meta?}");
  }
  const pin = body as Record<string, unknown>;
  if (typeof pin.cid !== "string" || pin.cid === "") {
    throw new InvalidArgumentError("cid is required (a string)");
  }
  const { cid } = checkedCid(pin.cid, "cid");
  const name = pin.name === undefined || pin.name === null ? null : checkedName(pin.name, "name");
  let origins: string[] = [];
  if (pin.origins !== undefined && pin.origins !== null) {
    if (!Array.isArray(pin.origins) || pin.origins.length > MAX_ORIGINS) {
      throw new InvalidArgumentError(
        `origins must be an array of at most ${MAX_ORIGINS} multiaddrs`,
      );
    }
    origins = pin.origins.map((origin) => {
      if (
        typeof origin !== "string" ||
        !origin.startsWith("/") ||
        origin.length > MAX_MULTIADDR_LENGTH
      ) {
        throw new InvalidArgumentError(
          `each origin must be a multiaddr string ("/…", at most ${MAX_MULTIADDR_LENGTH} characters)`,
        );
      }
      return origin;
    });
    origins = [...new Set(origins)];
  }
  const meta = pin.meta === undefined || pin.meta === null ? {} : checkedMeta(pin.meta, "meta");
  return { cid, cidGiven: pin.cid, name, origins, meta };
}
