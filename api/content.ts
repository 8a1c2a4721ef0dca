import * as dagJson from "@ipld/dag-json";
import { CID } from "multiformats/cid";
import type { ContentBackend } from "@/backends/content-backend.js";
import { BackendRequestError, ContentUnavailableError } from "@/backends/errors.js";
import type { ApiCommon } from "./context.js";
import { ClientError, InvalidArgumentError, NotFoundError, UnavailableError } from "./errors.js";

/**
 * Reading content back (cat, dag/get, block/get). Reads are served only from content some
 * backend already holds locally: Quasar is a pinning service, not a public gateway, so a
 * CID no backend has is 404 instead of a network fetch that could hang for ever.
 */

/**
 * The content role of the first backend whose store holds the root block of `cid`, or
 * NotFoundError. Backends that only pin hold no bytes to serve and are passed over.
 */
export async function backendHolding(
  common: ApiCommon,
  cid: CID,
  signal: AbortSignal,
): Promise<ContentBackend> {
  for (const backend of common.backends) {
    if (!backend.content) continue;
    try {
      if (await backend.content.hasBlock(cid, { signal })) return backend.content;
    } catch (error) {
      // One backend down must not hide content another one holds.
      common.logger.debug({
        msg: "hasBlock failed",
        backend: backend.id,
        cid: cid.toString(),
        err: error,
      });
    }
  }
  throw new NotFoundError(`${cid.toString()} is not stored by Quasar`);
}

/**
 * Starts a byte stream and waits for its first chunk, so a failure that happens at once
 * (not a file, block missing) becomes a proper error status instead of a broken 200.
 */
export async function startStream(
  source: AsyncIterable<Uint8Array>,
  onLateError: (error: unknown) => void,
): Promise<ReadableStream<Uint8Array>> {
  const iterator = source[Symbol.asyncIterator]();
  let first: IteratorResult<Uint8Array>;
  try {
    first = await iterator.next();
  } catch (error) {
    throw asReadError(error);
  }
  let pending: Uint8Array | undefined = first.done ? undefined : first.value;
  let done = first.done === true;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (pending) {
        controller.enqueue(pending);
        pending = undefined;
        return;
      }
      if (done) {
        controller.close();
        return;
      }
      try {
        const next = await iterator.next();
        if (next.done) {
          done = true;
          controller.close();
        } else controller.enqueue(next.value);
      } catch (error) {
        onLateError(error);
        controller.error(new Error("read failed"));
      }
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}

/**
 * Maps a backend's read failure by class (never by its message, which names the backend's
 * label): missing content is 404, a refused request (not a file, no such path) is 400, the
 * rest is 503. Only the backend's own reason text reaches the client, with URLs removed.
 */
export function asReadError(error: unknown): Error {
  if (error instanceof ClientError || error instanceof UnavailableError) return error;
  if (error instanceof ContentUnavailableError) {
    return new NotFoundError(`${error.cid} is not available on any backend`);
  }
  if (error instanceof BackendRequestError) {
    return new InvalidArgumentError(`the backend refused: ${scrub(error.backendMessage)}`);
  }
  return new UnavailableError("BACKEND_UNAVAILABLE", "the storage backend failed", {
    cause: error,
  });
}

/** Removes anything URL-like from a backend's message and bounds its length. */
export function scrub(message: string): string {
  return message.replace(/[a-z][a-z0-9+.-]*:\/\/\S*/gi, "<backend>").slice(0, 200);
}

/** Reads a DAG node through a backend, turning "no such path" into 404. */
export async function readDagNode(
  common: ApiCommon,
  cid: CID,
  path: string,
  signal: AbortSignal,
): Promise<{ value: unknown; remainderPath: string }> {
  const backend = await backendHolding(common, cid, signal);
  try {
    return await backend.getDag(cid, { path: path === "" ? undefined : path, signal });
  } catch (error) {
    throw asReadError(error);
  }
}

/**
 * Renders a decoded IPLD value as plain JSON: links become `{"/": "<cid>"}` and bytes
 * `{"/": {"bytes": "<base64>"}}` (the dag-json conventions), bigints become numbers when
 * safe and strings otherwise. Depth is bounded by the decoders themselves.
 */
export function toJsonValue(value: unknown): unknown {
  const asCid = CID.asCID(value);
  if (asCid) return { "/": asCid.toString() };
  if (value instanceof Uint8Array) {
    return { "/": { bytes: Buffer.from(value).toString("base64").replace(/=+$/, "") } };
  }
  if (typeof value === "bigint") {
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  }
  if (Array.isArray(value)) return value.map(toJsonValue);
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, inner] of Object.entries(value)) out[key] = toJsonValue(inner);
    return out;
  }
  return value;
}

/** Encodes a value as dag-json bytes (Kubo's dag/get answer). */
export function encodeDagJson(value: unknown): Uint8Array {
  return dagJson.encode(value);
}
