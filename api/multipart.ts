import { Dicer } from "@fastify/busboy";
import { InvalidMultipartError, UnsupportedMediaTypeError } from "./errors.js";

/**
 * Streaming multipart/form-data (RFC 7578) over any byte source, on @fastify/busboy's
 * multipart engine (Dicer). Parts are yielded one at a time and each part's body is itself a
 * stream, so a 1 GiB file passes through in chunk-sized pieces and is never held whole: the
 * source is read only as fast as the consumer drains the current part.
 *
 * Dicer, not the Busboy wrapper: Busboy silently skips a part without Content-Disposition (or
 * with a malformed header line) and silently truncates oversized headers, where this API
 * refuses them. Dicer hands over every part with its raw headers, so those checks stay here.
 * Field and file names are taken as sent (a Kubo client's `dir/a.txt` keeps its folder), and
 * every part streams, whether or not it has a filename.
 *
 * Every malformed input ends in InvalidMultipartError (400): a missing or bad boundary, a
 * truncated body, headers that are too long or lack a Content-Disposition, too many parts.
 * An error from the source (body limit, idle timeout) reaches the consumer as is. Nothing
 * hangs: the parser only ever waits on the source or on the consumer.
 */

/** One part of a multipart body. */
export type MultipartPart = {
  /** The form field name from Content-Disposition. */
  name: string;
  /** The file name, when the part is a file (Content-Disposition `filename`). */
  filename: string | undefined;
  contentType: string | undefined;
  /**
   * The part's bytes. Read it before asking for the next part; a part left unread is
   * skipped (drained) when the next one is requested.
   */
  body: AsyncIterable<Uint8Array>;
};

export type MultipartLimits = {
  /** Largest header block of one part. */
  maxHeaderBytes?: number;
  /** Most parts accepted in one body. */
  maxParts?: number;
};

const DEFAULT_MAX_HEADER_BYTES = 16 * 1024;
const DEFAULT_MAX_PARTS = 64;
/** Bytes read without finding the first boundary before giving up (clients send no preamble). */
const MAX_PREAMBLE_BYTES = 64 * 1024;

/**
 * Extracts the boundary from a Content-Type header. Throws UnsupportedMediaTypeError when
 * the type is not multipart/form-data, InvalidMultipartError when the boundary is missing
 * or not a valid RFC 2046 boundary (1–70 characters).
 */
export function multipartBoundary(contentType: string | undefined): string {
  const [type = "", ...params] = (contentType ?? "").split(";");
  if (type.trim().toLowerCase() !== "multipart/form-data") {
    throw new UnsupportedMediaTypeError("multipart/form-data", contentType);
  }
  for (const param of params) {
    const eq = param.indexOf("=");
    if (eq < 0) continue;
    if (param.slice(0, eq).trim().toLowerCase() !== "boundary") continue;
    let value = param.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2)
      value = value.slice(1, -1);
    if (!/^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$/.test(value) || value.endsWith(" ")) {
      throw new InvalidMultipartError(
        "the boundary must be 1 to 70 characters from RFC 2046's set",
      );
    }
    return value;
  }
  throw new InvalidMultipartError("the Content-Type has no boundary parameter");
}

type RawHeaders = Record<string, string[] | undefined>;

/** Parses a multipart body from `source`. Consume each part's body in order. */
export async function* parseMultipart(
  source: AsyncIterable<Uint8Array>,
  boundary: string,
  limits: MultipartLimits = {},
): AsyncGenerator<MultipartPart, void, undefined> {
  const maxHeaderBytes = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const maxParts = limits.maxParts ?? DEFAULT_MAX_PARTS;
  // Dicer truncates a longer header block silently; leave room to measure and refuse it.
  const config: Dicer.Config & { maxHeaderSize: number } = {
    boundary,
    maxHeaderSize: 4 * maxHeaderBytes,
  };
  const dicer = new Dicer(config);

  const ready: { part: Dicer.PartStream; headers: RawHeaders }[] = [];
  let failure: unknown;
  let finished = false;
  let stopped = false;
  let received = 0;
  let parts = 0;
  let headerPending = false;
  let waiters: (() => void)[] = [];
  const notify = () => {
    const woken = waiters;
    waiters = [];
    for (const wake of woken) wake();
  };
  const changed = () => new Promise<void>((resolve) => waiters.push(resolve));
  const fail = (error: unknown) => {
    failure ??= error;
    notify();
  };

  dicer.on("part", (part) => {
    // A part whose header block never ended (a boundary came first) is never announced.
    if (headerPending) fail(new InvalidMultipartError("the body ends inside a part's headers"));
    parts += 1;
    if (parts > maxParts) fail(new InvalidMultipartError(`more than ${maxParts} parts`));
    headerPending = true;
    part.on("header", (headers: object) => {
      headerPending = false;
      ready.push({ part, headers: headers as RawHeaders });
      notify();
    });
    part.on("readable", notify);
    part.on("end", notify);
    // Dicer reports a truncated body on the parser too; that one becomes the failure.
    part.on("error", () => {});
  });
  dicer.on("error", () => {
    fail(
      new InvalidMultipartError(
        received === 0
          ? "the body is empty"
          : parts === 0
            ? "the boundary never appears in the body"
            : "the body ends before the closing boundary",
      ),
    );
  });
  dicer.on("finish", () => {
    if (headerPending) fail(new InvalidMultipartError("the body ends inside a part's headers"));
    finished = true;
    notify();
  });

  const iterator = source[Symbol.asyncIterator]();
  const write = (chunk: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      // Dicer holds the callback while the current part's buffer is full: backpressure.
      dicer.write(chunk, (error) => (error ? reject(error) : resolve()));
    });
  const pump = async () => {
    try {
      for (;;) {
        const next = await iterator.next();
        if (next.done) break;
        // After the closing boundary the rest (an epilogue, if any) is read and ignored.
        if (failure !== undefined || (stopped && !finished)) return;
        received += next.value.byteLength;
        await write(next.value);
        if (parts === 0 && received > MAX_PREAMBLE_BYTES + boundary.length) {
          throw new InvalidMultipartError("the body does not start with the boundary");
        }
      }
      dicer.end();
    } catch (error) {
      fail(error);
    }
  };
  void pump();

  /** Reads one part's buffered bytes in order; never destroys the part, so it can be drained. */
  async function* partBody(part: Dicer.PartStream): AsyncGenerator<Uint8Array, void, undefined> {
    for (;;) {
      if (failure !== undefined) throw failure;
      const chunk: Buffer | null = part.read();
      if (chunk !== null) {
        yield chunk;
        continue;
      }
      if (part.readableEnded) return;
      await changed();
    }
  }

  try {
    for (;;) {
      if (failure !== undefined) throw failure;
      const next = ready.shift();
      if (next === undefined) {
        if (finished) return;
        await changed();
        continue;
      }
      const disposition = parseDisposition(header(next.headers, "content-disposition"));
      const headerBytes = Object.entries(next.headers).reduce(
        (sum, [key, values]) =>
          sum + (values ?? []).reduce((line, value) => line + key.length + value.length + 4, 0),
        0,
      );
      if (headerBytes > maxHeaderBytes) {
        throw new InvalidMultipartError(`a part's headers exceed ${maxHeaderBytes} bytes`);
      }
      const body = partBody(next.part);
      yield {
        name: disposition.name,
        filename: disposition.filename,
        contentType: header(next.headers, "content-type"),
        body,
      };
      // A part the consumer did not read to the end is skipped.
      for await (const _ of partBody(next.part)) void _;
    }
  } finally {
    // The consumer stopped early or the body failed: stop pulling from the source.
    stopped = true;
  }
}

/** Dicer keeps header bytes as latin1 text; names and filenames are UTF-8 on the wire. */
function header(headers: RawHeaders, name: string): string | undefined {
  const value = headers[name]?.[0];
  return value === undefined ? undefined : Buffer.from(value, "latin1").toString("utf8").trim();
}

function parseDisposition(value: string | undefined): {
  name: string;
  filename: string | undefined;
} {
  if (value === undefined)
    throw new InvalidMultipartError("a part has no Content-Disposition header");
  const [kind = "", ...rest] = splitParams(value);
  if (kind.trim().toLowerCase() !== "form-data") {
    throw new InvalidMultipartError("a part's Content-Disposition is not form-data");
  }
  let name: string | undefined;
  let filename: string | undefined;
  for (const param of rest) {
    const eq = param.indexOf("=");
    if (eq < 0) continue;
    const key = param.slice(0, eq).trim().toLowerCase();
    let raw = param.slice(eq + 1).trim();
    if (raw.startsWith('"') && raw.endsWith('"') && raw.length >= 2) {
      raw = raw.slice(1, -1).replace(/\\(["\\])/g, "$1");
    }
    if (key === "name") name = raw;
    else if (key === "filename") filename = raw;
  }
  if (name === undefined) throw new InvalidMultipartError("a part has no field name");
  return { name, filename };
}

/** Splits on ";" outside double quotes. */
function splitParams(value: string): string[] {
  const out: string[] = [];
  let current = "";
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const char = value[i];
    if (char === "\\" && quoted && i + 1 < value.length) {
      current += char + value[i + 1];
      i++;
      continue;
    }
    if (char === '"') quoted = !quoted;
    if (char === ";" && !quoted) {
      out.push(current);
      current = "";
      continue;
    }
    current += char;
  }
  out.push(current);
  return out;
}
