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

/**
 * A value among those Quasar implements. Kubo accepts more (any codec it knows); the others
 * are refused by name, never replaced by a default.
 */
function supported<const T extends readonly [string, ...string[]]>(option: string, values: T) {
  return z
    .string()
    .transform((value, ctx) => {
      if ((values as readonly string[]).includes(value)) return value as T[number];
      ctx.addIssue({
        code: "custom",
        message: `${option} "${value.slice(0, 50)}" is not supported by Quasar's Kubo mount: it implements ${values.join(", ")}`,
      });
      return z.NEVER;
    })
    .openapi({ type: "string", enum: [...values] });
}

/**
 * Kubo's int64 options, parsed as Kubo does (Go's strconv.ParseInt, base 0: "0x10", "0o17",
 * "0b1", "010" is octal, "1_000"), with Kubo's message for what it cannot convert.
 */
function kuboInt64(option: string) {
  return z
    .string()
    .transform((raw, ctx) => {
      const value = parseGoInt(raw);
      if (value === undefined) {
        // Kubo's words, from go-ipfs-cmds.
        const what = raw === "" ? "empty value" : `value "${raw.slice(0, 50)}"`;
        ctx.addIssue({
          code: "custom",
          message: `could not convert ${what} to type "int64" (for option "-${option}")`,
        });
        return z.NEVER;
      }
      if (value < 0n) {
        // Kubo answers this one 500; Quasar keeps 4xx for what the client sent (see kubo.ts).
        ctx.addIssue({ code: "custom", message: `cannot specify negative ${option}` });
        return z.NEVER;
      }
      return Number(value);
    })
    .openapi({ type: "integer", minimum: 0 });
}

const INT64_MAX = 2n ** 63n - 1n;

/** Go's strconv.ParseInt(raw, 0, 64): undefined when Go would refuse it. */
export function parseGoInt(raw: string): bigint | undefined {
  const match =
    /^([+-]?)(0[xX](?:_?[0-9a-fA-F])+|0[oO](?:_?[0-7])+|0[bB](?:_?[01])+|0(?:_?[0-7])+|[1-9](?:_?\d)*|0)$/.exec(
      raw,
    );
  if (!match) return undefined;
  const digits = (match[2] ?? "").replaceAll("_", "");
  const magnitude =
    /^0[0-7]/.test(digits) && !/^0[xXoObB]/.test(digits)
      ? BigInt(`0o${digits.slice(1)}`)
      : BigInt(digits.replace(/^0[oO]/, "0o"));
  const value = match[1] === "-" ? -magnitude : magnitude;
  if (value > INT64_MAX || value < -INT64_MAX - 1n) return undefined;
  return value;
}

/**
 * Kubo's dag/put flags. Kubo's defaults: input dag-json, store dag-cbor, sha2-256, CIDv1.
 * Kubo's own default is not to pin; an upload to Quasar is always pinned, so `pin=false` is
 * refused rather than ignored (the CID answered is the same either way).
 */
export const kuboDagPutQuery = z
  .object({
    "store-codec": supported("store-codec", ["dag-cbor", "dag-json"] as const).default("dag-cbor"),
    "input-codec": supported("input-codec", ["dag-json", "dag-cbor", "json"] as const).default(
      "dag-json",
    ),
    pin: z
      .string()
      .refine((value) => value === "true" || value === "", {
        message: "pin=false is not supported: everything uploaded to Quasar is pinned",
      })
      .optional(),
    "hash-alg": supported("hash-alg", ["sha2-256"] as const).optional(),
    hash: supported("hash", ["sha2-256"] as const).optional(),
    "cid-version": z.enum(["1"]).optional(),
    "stream-channels": flag.optional(),
  })
  .loose();

/** `arg` of Kubo's cat/block commands: a CID; a path inside it is refused by name. */
const kuboCidArg = z
  .string()
  .max(1024)
  .transform((raw) => (raw.startsWith("/ipfs/") ? raw.slice("/ipfs/".length) : raw))
  .refine((raw) => !/^[^/]+\/./.test(raw), {
    message: "a path inside a CID is not supported by Quasar's Kubo mount: pass the CID itself",
  })
  .transform((raw) => raw.replace(/\/+$/, ""))
  .pipe(cidString)
  .openapi({ type: "string", description: "the CID (or /ipfs/<cid>)" });

/** Kubo's cat: `arg` plus optional offset/length. */
export const kuboCatQuery = z
  .object({
    arg: kuboCidArg,
    offset: kuboInt64("offset").optional(),
    length: kuboInt64("length").optional(),
    progress: flag.optional(),
  })
  .loose();

/** Kubo's block/get and block/stat: `arg`. */
export const kuboBlockQuery = z.object({ arg: kuboCidArg }).loose();

/** Kubo's dag/get: `arg` (a CID and a path) and the codec of the answer. */
export const kuboDagGetQuery = dagGetQuery
  .extend({
    "output-codec": supported("output-codec", ["dag-json", "dag-cbor"] as const).default(
      "dag-json",
    ),
  })
  .loose();

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
