import { InvalidMultipartError, UnsupportedMediaTypeError } from "./errors.js";

/**
 * A streaming multipart/form-data parser (RFC 7578) over any byte source. Parts are yielded
 * one at a time and each part's body is itself a stream, so a 1 GiB file passes through in
 * chunk-sized pieces and is never held whole. Only a small tail (shorter than the boundary
 * delimiter) is kept between chunks.
 *
 * Every malformed input ends in InvalidMultipartError (400): a missing or bad boundary, a
 * truncated body, headers that never end or are too long, too many parts. Nothing hangs:
 * the parser only ever waits on the source, and the source ends or is limited by the caller.
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
/** Bytes tolerated before the first boundary (RFC 2046 allows a preamble; clients send none). */
const MAX_PREAMBLE_BYTES = 1024;
const CRLF = Buffer.from("\r\n");
const HEADER_END = Buffer.from("\r\n\r\n");

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

/** Parses a multipart body from `source`. Consume each part's body in order. */
export async function* parseMultipart(
  source: AsyncIterable<Uint8Array>,
  boundary: string,
  limits: MultipartLimits = {},
): AsyncGenerator<MultipartPart, void, undefined> {
  const maxHeaderBytes = limits.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES;
  const maxParts = limits.maxParts ?? DEFAULT_MAX_PARTS;
  const reader = createBufferedReader(source);
  const dashBoundary = Buffer.from(`--${boundary}`);
  // Between parts the delimiter is CRLF + "--" + boundary; the first may start the body.
  const delimiter = Buffer.from(`\r\n--${boundary}`);

  // Preamble: find the first "--boundary", tolerating a short preamble.
  for (;;) {
    const at = reader.buffer.indexOf(dashBoundary);
    if (at >= 0 && (at === 0 || reader.buffer.subarray(0, at).includes(CRLF))) {
      reader.consume(at + dashBoundary.length);
      break;
    }
    if (reader.buffer.length > MAX_PREAMBLE_BYTES + dashBoundary.length) {
      throw new InvalidMultipartError("the body does not start with the boundary");
    }
    if (!(await reader.fill())) {
      throw new InvalidMultipartError(
        reader.total === 0 ? "the body is empty" : "the boundary never appears in the body",
      );
    }
  }

  let parts = 0;
  for (;;) {
    // After a delimiter: "--" closes the body, CRLF starts a part (transport padding allowed).
    await reader.need(2, "the body ends right after a boundary");
    const after = reader.buffer.subarray(0, 2).toString("latin1");
    if (after === "--") return;
    await skipPadding(reader);
    if (!reader.buffer.subarray(0, 2).equals(CRLF)) {
      throw new InvalidMultipartError("a boundary is not followed by a line break");
    }
    reader.consume(2);

    parts += 1;
    if (parts > maxParts) throw new InvalidMultipartError(`more than ${maxParts} parts`);
    const headers = await readHeaders(reader, maxHeaderBytes);
    const disposition = parseDisposition(headers.get("content-disposition"));

    let finished = false;
    const body = streamUntil(reader, delimiter, () => {
      finished = true;
    });
    yield {
      name: disposition.name,
      filename: disposition.filename,
      contentType: headers.get("content-type"),
      body,
    };
    // A part the consumer did not read to the end is skipped; a fresh reader picks up
    // exactly where the consumer stopped, since all state lives in `reader`.
    if (!finished) {
      for await (const _ of streamUntil(reader, delimiter, () => {
        finished = true;
      }))
        void _;
    }
  }
}

type BufferedReader = {
  /** Bytes received and not yet consumed. */
  readonly buffer: Buffer;
  /** Bytes received so far. */
  readonly total: number;
  consume(count: number): void;
  /** Takes the first `count` bytes out of the buffer (no copy). */
  take(count: number): Buffer;
  /** Pulls one more chunk; false when the source has ended. */
  fill(): Promise<boolean>;
  /** Ensures at least `count` bytes are buffered, or throws with `truncated`. */
  need(count: number, truncated: string): Promise<void>;
};

function createBufferedReader(source: AsyncIterable<Uint8Array>): BufferedReader {
  const iterator = source[Symbol.asyncIterator]();
  let buffer: Buffer = Buffer.alloc(0);
  let total = 0;
  let ended = false;
  const reader: BufferedReader = {
    get buffer() {
      return buffer;
    },
    get total() {
      return total;
    },
    consume(count) {
      buffer = buffer.subarray(count);
    },
    take(count) {
      const head = buffer.subarray(0, count);
      buffer = buffer.subarray(count);
      return head;
    },
    async fill() {
      if (ended) return false;
      const next = await iterator.next();
      if (next.done) {
        ended = true;
        return false;
      }
      const chunk = Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
      total += chunk.length;
      // Chunks are never mutated after they are handed out, so slices of old buffers stay valid.
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      return true;
    },
    async need(count, truncated) {
      while (buffer.length < count) {
        if (!(await reader.fill())) throw new InvalidMultipartError(truncated);
      }
    },
  };
  return reader;
}

async function skipPadding(reader: BufferedReader): Promise<void> {
  // RFC 2046 allows linear white space between the boundary and its CRLF.
  for (let skipped = 0; skipped < 64; skipped++) {
    await reader.need(2, "the body ends inside a boundary line");
    const first = reader.buffer[0];
    if (first !== 0x20 && first !== 0x09) return;
    reader.consume(1);
  }
  throw new InvalidMultipartError("a boundary line has too much trailing white space");
}

async function readHeaders(
  reader: BufferedReader,
  maxHeaderBytes: number,
): Promise<Map<string, string>> {
  // A part may have no headers at all: the blank line comes first.
  await reader.need(2, "the body ends inside a part's headers");
  if (reader.buffer.subarray(0, 2).equals(CRLF)) {
    reader.consume(2);
    return new Map();
  }
  let end = reader.buffer.indexOf(HEADER_END);
  while (end < 0) {
    if (reader.buffer.length > maxHeaderBytes) {
      throw new InvalidMultipartError(`a part's headers exceed ${maxHeaderBytes} bytes`);
    }
    if (!(await reader.fill()))
      throw new InvalidMultipartError("the body ends inside a part's headers");
    end = reader.buffer.indexOf(HEADER_END);
  }
  if (end > maxHeaderBytes) {
    throw new InvalidMultipartError(`a part's headers exceed ${maxHeaderBytes} bytes`);
  }
  const block = reader.take(end).toString("utf8");
  reader.consume(HEADER_END.length);
  const headers = new Map<string, string>();
  for (const line of block.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon <= 0) throw new InvalidMultipartError("a part has a malformed header line");
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
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

/** Yields the bytes before the next `delimiter`, then consumes the delimiter itself. */
async function* streamUntil(
  reader: BufferedReader,
  delimiter: Buffer,
  onFinished: () => void,
): AsyncGenerator<Uint8Array, void, undefined> {
  for (;;) {
    const at = reader.buffer.indexOf(delimiter);
    if (at >= 0) {
      if (at > 0) yield reader.take(at);
      reader.consume(delimiter.length);
      onFinished();
      return;
    }
    // Everything except a tail that could be the start of the delimiter is part data.
    const safe = reader.buffer.length - (delimiter.length - 1);
    if (safe > 0) yield reader.take(safe);
    if (!(await reader.fill())) {
      throw new InvalidMultipartError("the body ends before the part's closing boundary");
    }
  }
}
