import { z } from "@hono/zod-openapi";
import { isAddress } from "viem";
import { checkCid } from "@/src/cid.js";
import { InvalidArgumentError } from "./errors.js";
import { LEDGER_STATUSES, PIN_REASON_KINDS } from "./ports.js";

/**
 * The zod schemas of every input the API accepts. Routes validate with `parseInput`, and the
 * OpenAPI document (/openapi.json) is generated from these same schemas, so the document
 * cannot drift from what the server enforces.
 */

/** Turns a zod failure into InvalidArgumentError naming each field and what it expects. */
export function parseInput<T extends z.ZodType>(
  schema: T,
  input: unknown,
  what: string,
): z.output<T> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const details = result.error.issues
    .slice(0, 5)
    .map(
      (issue) =>
        `${issue.path.length > 0 ? `${what}.${issue.path.join(".")}` : what}: ${issue.message}`,
    )
    .join("; ");
  throw new InvalidArgumentError(details);
}

/** A CID in any valid spelling; the output is the normalised CIDv1 base32 string. */
export const cidString = z
  .string()
  .transform((raw, ctx) => {
    const check = checkCid(raw);
    if (!check.valid) {
      ctx.addIssue({
        code: "custom",
        message: `not a valid CID (${check.reason}): ${check.detail}`,
      });
      return z.NEVER;
    }
    return check.cid;
  })
  .openapi({
    type: "string",
    example: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
  });

/** `arg=<cid>` of /cat and /block/get. Kubo's `/ipfs/<cid>` form is accepted too. */
export const catQuery = z.object({
  arg: z
    .string()
    .max(1024)
    .transform((raw) => (raw.startsWith("/ipfs/") ? raw.slice("/ipfs/".length) : raw))
    .pipe(cidString)
    .openapi({
      description: "the CID to read",
      example: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
    }),
});

/** `arg=<cid>[/path]` of /dag/get: a CID optionally followed by a path inside the node. */
export const dagGetQuery = z.object({
  arg: z
    .string()
    .max(1024)
    .transform((raw, ctx) => {
      const trimmed = raw.startsWith("/ipfs/") ? raw.slice("/ipfs/".length) : raw;
      const slash = trimmed.indexOf("/");
      const head = slash < 0 ? trimmed : trimmed.slice(0, slash);
      const path = slash < 0 ? "" : trimmed.slice(slash + 1).replace(/\/+$/, "");
      const check = checkCid(head);
      if (!check.valid) {
        ctx.addIssue({
          code: "custom",
          message: `not a valid CID (${check.reason}): ${check.detail}`,
        });
        return z.NEVER;
      }
      return { cid: check.cid, path };
    })
    .openapi({ type: "string", description: "CID, optionally followed by /path inside the node" }),
});

const codec = z.enum(["dag-cbor", "dag-json"]);

/** Options of Quasar's POST /api/v0/dag/put (the body is the JSON node itself). */
export const dagPutQuery = z.object({
  format: codec.optional().openapi({ description: "codec to store with (default dag-cbor)" }),
  "store-codec": codec.optional(),
});

const flag = z
  .enum(["true", "false", "1", "0", ""])
  .transform((value) => value === "true" || value === "1" || value === "");

/**
 * Kubo's add flags. Quasar always stores UnixFS with CIDv1 and raw leaves and always pins
 * (an upload is an optimistic pin), so flags that would change either are refused rather than
 * silently ignored; flags that only change the answer's progress lines are accepted.
 */
export const kuboAddQuery = z
  .object({
    "cid-version": z.string().optional().openapi({ description: "0 (default) or 1" }),
    "raw-leaves": z
      .string()
      .optional()
      .openapi({ description: "default false, true with cid-version=1" }),
    chunker: z
      .string()
      .optional()
      .openapi({ description: "size-<bytes> (default size-262144), rabin[-<min>-<avg>-<max>]" }),
    hash: z.string().optional().openapi({ description: "only sha2-256" }),
    "only-hash": z.string().optional().openapi({ description: "compute the CIDs, store nothing" }),
    "wrap-with-directory": z.string().optional(),
    hidden: z.string().optional(),
    pin: z.enum(["true"]).optional().openapi({ description: "uploads are always pinned" }),
    progress: flag.optional(),
    "stream-channels": flag.optional(),
    quiet: flag.optional(),
    quieter: flag.optional(),
    silent: flag.optional(),
    "pin-name": z.string().max(255).optional(),
  })
  // Unknown flags are ignored, as Kubo does: stock clients send extras (timeout).
  .loose();

/** Kubo's dag/put flags. */
export const kuboDagPutQuery = z
  .object({
    "store-codec": codec.default("dag-cbor"),
    "input-codec": z.enum(["dag-cbor", "dag-json", "json"]).default("dag-json"),
    pin: z.enum(["true"]).optional(),
    "hash-alg": z.enum(["sha2-256"]).optional(),
    hash: z.enum(["sha2-256"]).optional(),
    "cid-version": z.enum(["1"]).optional(),
    "stream-channels": flag.optional(),
  })
  .loose();

/** Kubo's cat and block/get take `arg` plus optional offset/length. */
export const kuboCatQuery = catQuery.extend({
  offset: z.coerce.number().int().nonnegative().optional(),
  length: z.coerce.number().int().nonnegative().optional(),
  progress: flag.optional(),
});

export const kuboDagGetQuery = dagGetQuery.extend({
  "output-codec": z.enum(["dag-json"]).optional(),
});

/** An address in any case; the output is lowercase. */
export const addressString = z
  .string()
  .max(100)
  .refine((value) => isAddress(value, { strict: false }), {
    message: "expected a 20-byte hex address (0x followed by 40 hex digits)",
  })
  .transform((value) => value.toLowerCase() as `0x${string}`)
  .openapi({ type: "string", example: "0x5fbdb2315678afecb367f032d93f642f64180aa3" });

/** POST /api/v0/storageContracts body (the original sent only `contractAddress`). */
export const registerContractBody = z
  .object({
    contractAddress: addressString,
    chainId: z
      .number()
      .int()
      .positive()
      .optional()
      .openapi({ description: "required when more than one chain is configured" }),
  })
  .strict();

export const pinParams = z.object({ cid: cidString });

export const pinListQuery = z
  .object({
    status: z.enum(LEDGER_STATUSES).optional(),
    reason: z.enum(PIN_REASON_KINDS).optional(),
    backend: z.string().min(1).max(200).optional(),
    cursor: cidString.optional().openapi({ description: "nextCursor of the previous page" }),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();

/** The Quasar error body, for the OpenAPI document. */
export const errorBody = z
  .object({ error: z.object({ reason: z.string(), details: z.string() }) })
  .openapi("Error");
