import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { BackendAbortedError, BackendStreamError, BackendUnavailableError } from "../errors.js";
import { writeRequestChunk } from "../request-body.js";

/**
 * A minimal Kubo RPC transport on node:http. kubo-rpc-client is not used for calls because it
 * never reads the `X-Stream-Error` trailer that Kubo (and js-ipfs) send when a streamed answer
 * fails after its 200 header: a broken `cat`, `dag/export` or `pin/ls` would look complete.
 * Here every streamed body ends by checking that trailer and the connection's completeness.
 */

export type RpcArgs = Record<string, string | number | boolean | readonly string[] | undefined>;

/** A request body: streamed as a single multipart part (how Kubo takes files, CARs and DAG nodes). */
export type RpcBody = AsyncIterable<Uint8Array>;

export type RpcTransport = {
  /**
   * POSTs `/api/v0/<command>`. Resolves with the streamed body of a 2xx answer; rejects with
   * RpcDaemonError when the daemon answers an error, BackendUnavailableError when it cannot be
   * reached, BackendAbortedError when `signal` aborts.
   */
  call(
    command: string,
    options: { args?: RpcArgs; body?: RpcBody; signal?: AbortSignal },
  ): Promise<RpcStream>;
  /** Closes idle keep-alive sockets. */
  close(): void;
};

/** The streamed body of a successful answer. Iterating it throws BackendStreamError if the stream broke. */
export type RpcStream = AsyncIterable<Uint8Array> & { status: number; contentType: string };

/** The daemon refused a command with its own message (Kubo: HTTP 500 `{"Message": …, "Type": "error"}`). */
export class RpcDaemonError extends Error {
  override name = "RpcDaemonError";
  constructor(
    readonly status: number,
    readonly daemonMessage: string,
  ) {
    super(daemonMessage);
  }
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ECONNABORTED",
  "UND_ERR_SOCKET",
]);

export function createRpcTransport(params: {
  baseUrl: URL;
  authorization: string | undefined;
  /** Masked label used in errors. */
  label: string;
  /** Upper bound of concurrent sockets to the daemon. */
  maxSockets?: number;
}): RpcTransport {
  const { baseUrl, authorization, label } = params;
  const secure = baseUrl.protocol === "https:";
  const agent = new (secure ? https.Agent : http.Agent)({
    keepAlive: true,
    maxSockets: params.maxSockets ?? 64,
  });
  const request = secure ? https.request : http.request;
  const prefix = baseUrl.pathname.replace(/\/+$/, "");

  function urlFor(command: string, args: RpcArgs | undefined): URL {
    const url = new URL(baseUrl);
    url.pathname = `${prefix}/api/v0/${command}`;
    for (const [key, value] of Object.entries(args ?? {})) {
      if (value === undefined) continue;
      if (Array.isArray(value))
        for (const item of value) url.searchParams.append(key, String(item));
      else url.searchParams.set(key, String(value));
    }
    return url;
  }

  function call(
    command: string,
    options: { args?: RpcArgs; body?: RpcBody; signal?: AbortSignal },
  ): Promise<RpcStream> {
    const { signal } = options;
    if (signal?.aborted)
      return Promise.reject(new BackendAbortedError(label, command, { cause: signal.reason }));
    const boundary = `quasar-${Math.random().toString(36).slice(2)}${Date.now().toString(36)}`;
    const headers: Record<string, string> = {};
    if (authorization) headers.authorization = authorization;
    if (options.body) headers["content-type"] = `multipart/form-data; boundary=${boundary}`;

    return new Promise<RpcStream>((resolve, reject) => {
      let settled = false;
      const req = request(urlFor(command, options.args), { method: "POST", headers, agent });
      const onAbort = () => req.destroy(new AbortRequest());
      signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => signal?.removeEventListener("abort", onAbort);

      // When the caller's body stream itself fails (an upload cut off, a peer's broken CAR),
      // that error is the caller's to see, unchanged: this backend is not at fault.
      let sourceFailure: SourceFailure | undefined;
      const failRequest = (error: unknown) => {
        cleanup();
        if (settled) return;
        settled = true;
        reject(sourceFailure ? sourceFailure.cause : translate(error, command, signal));
      };
      req.on("error", failRequest);
      req.on("response", (res) => {
        settled = true;
        if (res.statusCode === undefined || res.statusCode < 200 || res.statusCode >= 300) {
          readError(res, command).then(
            (error) => {
              cleanup();
              reject(error);
            },
            (error: unknown) => {
              cleanup();
              reject(translate(error, command, signal));
            },
          );
          return;
        }
        resolve(
          Object.assign(
            stream(res, command, signal, cleanup, () => sourceFailure),
            {
              status: res.statusCode,
              contentType: res.headers["content-type"] ?? "",
            },
          ),
        );
      });

      if (options.body) {
        writeMultipart(req, boundary, options.body).catch((error: unknown) => {
          if (error instanceof SourceFailure) sourceFailure = error;
          req.destroy(error instanceof Error ? error : new Error(String(error)));
        });
      } else {
        req.end();
      }
    });
  }

  async function* stream(
    res: IncomingMessage,
    command: string,
    signal: AbortSignal | undefined,
    cleanup: () => void,
    sourceFailure: () => SourceFailure | undefined,
  ): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of res) yield chunk as Uint8Array;
    } catch (error) {
      const source = sourceFailure();
      if (source) throw source.cause;
      throw signal?.aborted
        ? new BackendAbortedError(label, command, { cause: error })
        : new BackendStreamError(label, command, { cause: error, details: describe(error) });
    } finally {
      cleanup();
      // An early `break` by the consumer leaves the socket mid-answer: it cannot be reused.
      if (!res.complete) res.destroy();
    }
    if (!res.complete)
      throw new BackendStreamError(label, command, {
        details: "the answer ended before its last chunk",
      });
    const trailer = res.trailers["x-stream-error"];
    if (trailer) {
      throw new BackendStreamError(label, command, { details: parseMessage(trailer) ?? trailer });
    }
  }

  async function readError(res: IncomingMessage, command: string): Promise<Error> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res) {
      if (size < 65_536) chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    const text = Buffer.concat(chunks).toString("utf8");
    const message = parseMessage(text);
    const status = res.statusCode ?? 0;
    // A daemon's own refusal carries a JSON message; a bare 5xx comes from a proxy or a dying daemon.
    if (message !== undefined && status < 502) return new RpcDaemonError(status, message);
    if (status >= 500 || status === 429 || status === 408) {
      return new BackendUnavailableError(label, {
        details: `${command}: HTTP ${status} ${message ?? text.slice(0, 200)}`,
      });
    }
    return new RpcDaemonError(status, message ?? `HTTP ${status} ${text.slice(0, 200)}`.trim());
  }

  function translate(error: unknown, command: string, signal: AbortSignal | undefined): Error {
    if (signal?.aborted || error instanceof AbortRequest) {
      return new BackendAbortedError(label, command, { cause: signal?.reason ?? error });
    }
    if (error instanceof BackendUnavailableError || error instanceof BackendAbortedError)
      return error;
    return new BackendUnavailableError(label, {
      cause: error,
      details: `${command}: ${describe(error)}`,
    });
  }

  return {
    call,
    close() {
      agent.destroy();
    },
  };
}

/** Splits a streamed body into JSON lines; a line `{"Type":"error"}` (Kubo's in-band stream error) throws. */
export async function* ndjson(
  body: AsyncIterable<Uint8Array>,
  onError: (message: string) => Error,
): AsyncGenerator<unknown> {
  const decoder = new TextDecoder();
  let buffered = "";
  const parse = (line: string): unknown => {
    const value: unknown = JSON.parse(line);
    if (isRecord(value) && value.Type === "error" && typeof value.Message === "string")
      throw onError(value.Message);
    return value;
  };
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let newline = buffered.indexOf("\n");
    while (newline !== -1) {
      const line = buffered.slice(0, newline).trim();
      buffered = buffered.slice(newline + 1);
      if (line.length > 0) yield parse(line);
      newline = buffered.indexOf("\n");
    }
  }
  buffered += decoder.decode();
  if (buffered.trim().length > 0) yield parse(buffered.trim());
}

/** Reads a whole (small) answer as JSON. */
export async function readJson(body: AsyncIterable<Uint8Array>): Promise<unknown> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

async function writeMultipart(
  req: http.ClientRequest,
  boundary: string,
  body: RpcBody,
): Promise<void> {
  const write = (chunk: Uint8Array | string) => writeRequestChunk(req, chunk);
  await write(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="file"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const iterator = body[Symbol.asyncIterator]();
  for (;;) {
    let next: IteratorResult<Uint8Array>;
    try {
      next = await iterator.next();
    } catch (error) {
      throw new SourceFailure(error);
    }
    if (next.done) break;
    if (next.value.byteLength === 0) continue;
    try {
      await write(next.value);
    } catch (error) {
      await iterator.return?.();
      throw error;
    }
  }
  await write(`\r\n--${boundary}--\r\n`);
  req.end();
}

/** The request body's own source threw; carries that error. */
class SourceFailure extends Error {
  override name = "SourceFailure";
  override readonly cause: unknown;
  constructor(cause: unknown) {
    super("the request body's source failed");
    this.cause = cause;
  }
}

function parseMessage(text: string): string | undefined {
  try {
    const value: unknown = JSON.parse(text);
    if (isRecord(value) && typeof value.Message === "string") return value.Message;
  } catch {
    // not JSON: the caller falls back to the raw text
  }
  return undefined;
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.includes(code)
      ? `${code} ${error.message}`
      : error.message || error.name;
  }
  return String(error);
}

/** Marks a request destroyed because the caller's signal aborted. */
class AbortRequest extends Error {
  override name = "AbortError";
}

/** True for errors that mean "could not talk to the daemon". */
export function isNetworkError(error: unknown): boolean {
  return error instanceof Error && NETWORK_CODES.has((error as NodeJS.ErrnoException).code ?? "");
}
