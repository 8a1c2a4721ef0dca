import type { MultibaseDecoder } from "multiformats/bases/interface";
import { bases } from "multiformats/basics";
import { CID } from "multiformats/cid";

/**
 * CID normalisation shared by the indexer, the reconciler, the API and the auditors.
 * Every CID Quasar stores or compares is CIDv1 in base32, so "Qm…" (v0) and "bafy…" (v1)
 * spellings of the same content are one CID.
 */

/** Longest string accepted as a CID. Real CIDs are under 100 characters; this leaves room for long hashes. */
export const MAX_CID_LENGTH = 256;

export const INVALID_CID_REASONS = [
  "empty",
  "too_long",
  "whitespace",
  "has_path",
  "not_a_cid",
] as const;
export type InvalidCidReason = (typeof INVALID_CID_REASONS)[number];

export type CidCheck =
  | { valid: true; cid: string }
  | { valid: false; reason: InvalidCidReason; detail: string };

// Every multibase multiformats knows, so base36 (k…) and base58 (z…) CIDv1 strings parse too.
const knownBases = Object.values(bases);
const anyMultibase: MultibaseDecoder<string> = {
  decode(text) {
    const base = knownBases.find((candidate) => text.startsWith(candidate.prefix));
    if (!base) throw new Error(`unknown multibase prefix ${JSON.stringify([...text][0] ?? "")}`);
    return base.decoder.decode(text);
  },
};

/** Classifies a raw string (as emitted on chain or sent by a client) without ever throwing. */
export function checkCid(raw: string): CidCheck {
  if (raw.length === 0) return { valid: false, reason: "empty", detail: "empty string" };
  if (raw.length > MAX_CID_LENGTH) {
    return {
      valid: false,
      reason: "too_long",
      detail: `${raw.length} characters, at most ${MAX_CID_LENGTH}`,
    };
  }
  if (raw.trim() !== raw || /\s/.test(raw)) {
    return { valid: false, reason: "whitespace", detail: "contains white space" };
  }
  if (raw.includes("/")) {
    return {
      valid: false,
      reason: "has_path",
      detail: "a path (/ipfs/… or …/file) is not a CID; emit the root CID alone",
    };
  }
  try {
    const cid = CID.parse(
      raw,
      raw.startsWith("Qm") || raw.startsWith("1") ? undefined : anyMultibase,
    );
    return { valid: true, cid: cid.toV1().toString() };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { valid: false, reason: "not_a_cid", detail: message.slice(0, 200) };
  }
}

/** Normalises a string known to be a CID; throws InvalidCidError otherwise. */
export function normalizeCid(raw: string): string {
  const check = checkCid(raw);
  if (!check.valid) throw new InvalidCidError(raw, check.reason, check.detail);
  return check.cid;
}

/** Parses a normalised (or any valid) CID string into a CID object. */
export function parseCid(raw: string): CID {
  return CID.parse(normalizeCid(raw));
}

export class InvalidCidError extends Error {
  override readonly name = "InvalidCidError";
  constructor(
    readonly input: string,
    readonly reason: InvalidCidReason,
    readonly detail: string,
  ) {
    super(`invalid CID (${reason}): ${detail}`);
  }
}
