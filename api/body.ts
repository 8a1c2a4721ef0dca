import { InvalidJsonError, PayloadTooLargeError } from "./errors.js";

/**
 * Reading request bodies without trusting them: every byte is counted, and the limit is
 * enforced as the bytes arrive, so an oversized body is refused the moment it crosses the
 * limit (the rest is never read) instead of after it has been buffered or stored.
 */

/**
 * Iterates a request body, throwing PayloadTooLargeError as soon as more than `maxBytes`
 * arrived. A declared Content-Length over the limit is refused before reading anything.
 * Cancels the underlying stream when the consumer stops early or the limit is crossed, so
 * the server stops pulling bytes from the socket.
 */
export async function* readLimited(
  request: Request,
  maxBytes: number,
  signal?: AbortSignal,
): AsyncGenerator<Uint8Array, void, undefined> {
  const declared = request.headers.get("content-length");
  if (declared !== null && /^\d+$/.test(declared) && Number(declared) > maxBytes) {
    await request.body?.cancel().catch(() => {});
    throw new PayloadTooLargeError(maxBytes);
  }
  if (!request.body) return;
  const reader = request.body.getReader();
  let total = 0;
  let finished = false;
  try {
    for (;;) {
      signal?.throwIfAborted();
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      total += value.byteLength;
      if (total > maxBytes) throw new PayloadTooLargeError(maxBytes);
      if (value.byteLength > 0) yield value;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** Reads a whole body of at most `maxBytes` into one array (for small JSON documents only). */
export async function readAllLimited(
  request: Request,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of readLimited(request, maxBytes, signal)) {
    chunks.push(chunk);
    length += chunk.byteLength;
  }
  return concatBytes(chunks, length);
}

export function concatBytes(chunks: readonly Uint8Array[], length?: number): Uint8Array {
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  const total = length ?? chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** Parses UTF-8 JSON bytes; an empty body or bad syntax is InvalidJsonError with the parser's reason. */
export function parseJsonBytes(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) throw new InvalidJsonError("the body is empty");
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidJsonError("the body is not valid UTF-8");
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new InvalidJsonError(message.slice(0, 200));
  }
}
