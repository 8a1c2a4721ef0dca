import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { BackendAbortedError, BackendStreamError, BackendUnavailableError } from "../errors.js";
import { isRecord } from "../kubo/rpc.js";
import { writeRequestChunk } from "../request-body.js";

/**
 * The IPFS Cluster REST API on node:http (keep-alive). Streamed answers (`GET /pins`) end with
 * an `X-Stream-Error` trailer that Cluster sets even when empty; a non-empty one, or a stream
 * cut short, throws BackendStreamError so a partial listing is never taken for the whole.
 */
export type RestTransport = {
  /**
   * Sends one request. Resolves with the body of a 2xx answer (204 → an empty body); rejects
   * with ClusterRefusal when the peer answers an error, BackendUnavailableError when it cannot
   * be reached or answers a bare 5xx, BackendAbortedError when `signal` aborts.
   */
  request(
    method: "GET" | "POST" | "DELETE",
    path: string,
    options?: { query?: URLSearchParams; body?: AsyncIterable<Uint8Array>; signal?: AbortSignal },
  ): Promise<RestStream>;
  close(): void;
};

export type RestStream = AsyncIterable<Uint8Array> & { status: number };

/** The peer refused with its own message (`{"code": …, "message": …}`). */
export class ClusterRefusal extends Error {
  override name = "ClusterRefusal";
  constructor(
    readonly status: number,
    readonly clusterMessage: string,
  ) {
    super(clusterMessage);
  }
}

export function createRestTransport(params: {
  baseUrl: URL;
  authorization: string | undefined;
  label: string;
  maxSockets?: number;
}): RestTransport {
  const { baseUrl, authorization, label } = params;
  const secure = baseUrl.protocol === "https:";
  const agent = new (secure ? https.Agent : http.Agent)({
    keepAlive: true,
    maxSockets: params.maxSockets ?? 64,
  });
  const send = secure ? https.request : http.request;
  const prefix = baseUrl.pathname.replace(/\/+$/, "");

  function request(
    method: "GET" | "POST" | "DELETE",
    path: string,
    options: {
      query?: URLSearchParams;
      body?: AsyncIterable<Uint8Array>;
      signal?: AbortSignal;
    } = {},
  ): Promise<RestStream> {
    const { signal } = options;
    const operation = `${method} ${path.replace(/\/[a-zA-Z0-9]{40,}/, "/{cid}")}`;
    if (signal?.aborted) {
      return Promise.reject(new BackendAbortedError(label, operation, { cause: signal.reason }));
    }
    const url = new URL(baseUrl);
    url.pathname = `${prefix}${path}`;
    if (options.query) url.search = options.query.toString();
    const boundary = `quasar-${Math.random().toString(36).slice(2)}`;
    const headers: Record<string, string> = {};
    if (authorization) headers.authorization = authorization;
    if (options.body) headers["content-type"] = `multipart/form-data; boundary=${boundary}`;
    return new Promise<RestStream>((resolve, reject) => {
      let settled = false;
      const req = send(url, { method, headers, agent });
      const onAbort = () => req.destroy(new Error("aborted"));
      signal?.addEventListener("abort", onAbort, { once: true });
      const cleanup = () => signal?.removeEventListener("abort", onAbort);
      req.on("error", (error) => {
        cleanup();
        if (settled) return;
        settled = true;
        reject(
          signal?.aborted
            ? new BackendAbortedError(label, operation, { cause: signal.reason })
            : new BackendUnavailableError(label, {
                cause: error,
                details: `${operation}: ${describe(error)}`,
              }),
        );
      });
      req.on("response", (res) => {
        settled = true;
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          readRefusal(res, status, operation).then(
            (error) => {
              cleanup();
              reject(error);
            },
            (error: unknown) => {
              cleanup();
              reject(new BackendUnavailableError(label, { cause: error, details: operation }));
            },
          );
          return;
        }
        resolve(Object.assign(stream(res, operation, signal, cleanup), { status }));
      });
      if (options.body) {
        writeMultipart(req, boundary, options.body).catch((error: unknown) => {
          req.destroy(error instanceof Error ? error : new Error(String(error)));
        });
      } else req.end();
    });
  }

  async function* stream(
    res: IncomingMessage,
    operation: string,
    signal: AbortSignal | undefined,
    cleanup: () => void,
  ): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of res) yield chunk as Uint8Array;
    } catch (error) {
      throw signal?.aborted
        ? new BackendAbortedError(label, operation, { cause: error })
        : new BackendStreamError(label, operation, { cause: error, details: describe(error) });
    } finally {
      cleanup();
      if (!res.complete) res.destroy();
    }
    if (!res.complete) {
      throw new BackendStreamError(label, operation, {
        details: "the answer ended before its last chunk",
      });
    }
    // Cluster sends the trailer on every stream, empty when all went well.
    const trailer = res.trailers["x-stream-error"];
    if (trailer && trailer.replace(/[\s,]/g, "") !== "") {
      throw new BackendStreamError(label, operation, { details: trailer });
    }
  }

  async function readRefusal(
    res: IncomingMessage,
    status: number,
    operation: string,
  ): Promise<Error> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of res) {
      if (size < 65_536) chunks.push(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    const text = Buffer.concat(chunks).toString("utf8");
    let message: string | undefined;
    try {
      const value: unknown = JSON.parse(text);
      if (isRecord(value) && typeof value.message === "string") message = value.message;
    } catch {
      // not Cluster's JSON: a proxy or a dying peer
    }
    if (message !== undefined && status < 502) return new ClusterRefusal(status, message);
    if (status >= 500 || status === 429 || status === 408) {
      return new BackendUnavailableError(label, {
        details: `${operation}: HTTP ${status} ${message ?? text.slice(0, 200)}`,
      });
    }
    return new ClusterRefusal(status, message ?? `HTTP ${status} ${text.slice(0, 200)}`.trim());
  }

  return {
    request,
    close() {
      agent.destroy();
    },
  };
}

/** Reads a whole (small) answer as JSON; an empty body (204) is undefined. */
export async function readJson(body: AsyncIterable<Uint8Array>): Promise<unknown> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8").trim();
  return text === "" ? undefined : JSON.parse(text);
}

async function writeMultipart(
  req: http.ClientRequest,
  boundary: string,
  body: AsyncIterable<Uint8Array>,
): Promise<void> {
  const write = (chunk: Uint8Array | string) => writeRequestChunk(req, chunk);
  await write(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="file.car"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  for await (const chunk of body) if (chunk.byteLength > 0) await write(chunk);
  await write(`\r\n--${boundary}--\r\n`);
  req.end();
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
