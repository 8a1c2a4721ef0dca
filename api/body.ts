import { BodyIdleTimeoutError, InvalidJsonError, PayloadTooLargeError } from "./errors.js";

/**
 * Reading request bodies without trusting them: every byte is counted, and the limit is
 * enforced as the bytes arrive, so an oversized body is refused the moment it crosses the
 * limit (the rest is never read) instead of after it has been buffered or stored.
 */

/**
 * Iterates a request body, throwing PayloadTooLargeError as soon as more than `maxBytes`
 * arrived. A declared Content-Length over the limit is refused before reading anything.
 * With `idleTimeoutMs`, a body that sends nothing for that long is cut off with
 * BodyIdleTimeoutError (408): a client trickling a byte now and then, or none, must not hold
 * a connection and an upload slot for the whole request timeout. The clock runs only while
 * we wait for the client, never while the consumer (the backend) is busy.
 * Cancels the underlying stream when the consumer stops early or a limit is crossed, so
 * the server stops pulling bytes from the socket.
 */
export async function* readLimited(
  request: Request,
  maxBytes: number,
  signal?: AbortSignal,
  idleTimeoutMs?: number,
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
      const { done, value } = await readWithin(reader, idleTimeoutMs);
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

/** One read, failing with BodyIdleTimeoutError when nothing arrives within `idleTimeoutMs`. */
async function readWithin(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  idleTimeoutMs: number | undefined,
): Promise<Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>["read"]>>> {
  if (idleTimeoutMs === undefined || idleTimeoutMs <= 0) return reader.read();
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new BodyIdleTimeoutError(idleTimeoutMs)), idleTimeoutMs);
  });
  try {
    return await Promise.race([reader.read(), idle]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads a whole body of at most `maxBytes` into one array (for small JSON documents only). */
export async function readAllLimited(
  request: Request,
  maxBytes: number,
  signal?: AbortSignal,
  idleTimeoutMs?: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of readLimited(request, maxBytes, signal, idleTimeoutMs)) {
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
