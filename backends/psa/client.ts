import { BackendAbortedError, BackendRequestError, BackendUnavailableError } from "../errors.js";
import type { PsaBackendParams } from "./connection-string.js";

/**
 * HTTP to one Pinning Service API endpoint: JSON in and out, the bearer token, `429` honoured
 * through `Retry-After`, and every failure mapped onto the backend error tree (an unreachable
 * or failing provider is retryable, a refusal is not). Answers that are not what the spec
 * says (a camelCase `requestId`, HTML, a missing `results`) become BackendRequestError with a
 * message that names the difference: the ledger shows it, nothing crashes.
 */

export const PSA_STATUSES = ["queued", "pinning", "pinned", "failed"] as const;
export type RemoteStatus = (typeof PSA_STATUSES)[number];

/** A provider's PinStatus, checked. */
export type RemotePinStatus = {
  requestid: string;
  status: RemoteStatus;
  created: string;
  pin: { cid: string; name?: string; meta?: Record<string, string> };
  info?: Record<string, string>;
};

export type RemotePage = { count: number; results: RemotePinStatus[] };

/** Retries of one call after `429 Too Many Requests` before giving up (retryable). */
const RATE_LIMIT_RETRIES = 5;
/** The longest Retry-After waited in one go. */
const MAX_RETRY_AFTER_MS = 60_000;
/** Whole-call timeout when the caller gives no signal. */
const CALL_TIMEOUT_MS = 30_000;

export type PsaClient = {
  readonly params: PsaBackendParams;
  /** One call; answers the status and the parsed JSON body (undefined for an empty body). */
  call(
    operation: string,
    method: "GET" | "POST" | "DELETE",
    path: string,
    options?: { query?: Record<string, string>; body?: unknown; signal?: AbortSignal },
  ): Promise<{ status: number; body: unknown }>;
  /** Checks a PinStatus; throws BackendRequestError naming what is off. */
  pinStatus(operation: string, value: unknown): RemotePinStatus;
  /** Checks a `{count, results}` page. */
  page(operation: string, value: unknown): RemotePage;
};

export function createPsaClient(params: PsaBackendParams): PsaClient {
  const { label } = params;
  const nonSpec = (operation: string, what: string) =>
    new BackendRequestError(label, operation, `the provider's answer is not the spec's: ${what}`);

  function pinStatus(operation: string, value: unknown): RemotePinStatus {
    if (!isRecord(value)) throw nonSpec(operation, "a PinStatus must be an object");
    if (typeof value.requestid !== "string" || value.requestid === "") {
      throw nonSpec(
        operation,
        `no requestid${"requestId" in value ? " (it sent camelCase requestId)" : ""}`,
      );
    }
    if (
      typeof value.status !== "string" ||
      !(PSA_STATUSES as readonly string[]).includes(value.status)
    ) {
      throw nonSpec(
        operation,
        `status ${JSON.stringify(value.status)} is not one of ${PSA_STATUSES.join(", ")}`,
      );
    }
    if (!isRecord(value.pin) || typeof value.pin.cid !== "string") {
      throw nonSpec(operation, "pin.cid is missing");
    }
    const meta = isRecord(value.pin.meta) ? stringMap(value.pin.meta) : undefined;
    return {
      requestid: value.requestid,
      status: value.status as RemoteStatus,
      created: typeof value.created === "string" ? value.created : "",
      pin: {
        cid: value.pin.cid,
        ...(typeof value.pin.name === "string" ? { name: value.pin.name } : {}),
        ...(meta ? { meta } : {}),
      },
      ...(isRecord(value.info) ? { info: stringMap(value.info) } : {}),
    };
  }

  function page(operation: string, value: unknown): RemotePage {
    if (!isRecord(value) || typeof value.count !== "number" || !Array.isArray(value.results)) {
      throw nonSpec(operation, "a list must be {count, results}");
    }
    return { count: value.count, results: value.results.map((item) => pinStatus(operation, item)) };
  }

  async function call(
    operation: string,
    method: "GET" | "POST" | "DELETE",
    path: string,
    options: { query?: Record<string, string>; body?: unknown; signal?: AbortSignal } = {},
  ): Promise<{ status: number; body: unknown }> {
    const url = new URL(`${params.baseUrl.pathname.replace(/\/$/, "")}${path}`, params.baseUrl);
    for (const [key, value] of Object.entries(options.query ?? {}))
      url.searchParams.set(key, value);
    const signal = options.signal ?? AbortSignal.timeout(CALL_TIMEOUT_MS);
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(url, {
          method,
          headers: {
            accept: "application/json",
            ...(params.authorization ? { authorization: params.authorization } : {}),
            ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
          },
          ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
          signal,
        });
      } catch (error) {
        if (signal.aborted) throw new BackendAbortedError(label, operation, { cause: error });
        throw new BackendUnavailableError(label, {
          cause: error,
          details: `${operation}: ${causeText(error)}`,
        });
      }
      let text: string;
      try {
        text = await response.text();
      } catch (error) {
        if (signal.aborted) throw new BackendAbortedError(label, operation, { cause: error });
        throw new BackendUnavailableError(label, {
          cause: error,
          details: `${operation}: the answer broke off`,
        });
      }
      if (response.status === 429 && attempt < RATE_LIMIT_RETRIES) {
        await wait(retryAfterMs(response.headers.get("retry-after")), signal).catch(
          (error: unknown) => {
            throw new BackendAbortedError(label, operation, { cause: error });
          },
        );
        continue;
      }
      if (response.status === 429 || response.status >= 500) {
        throw new BackendUnavailableError(label, {
          details: `${operation}: HTTP ${response.status}${reasonOf(text)}`,
        });
      }
      if (response.status === 401 || response.status === 403) {
        throw new BackendRequestError(
          label,
          operation,
          `the provider refused the access token (HTTP ${response.status})${reasonOf(text)}`,
        );
      }
      let body: unknown;
      if (text !== "") {
        try {
          body = JSON.parse(text);
        } catch {
          throw nonSpec(
            operation,
            `HTTP ${response.status} with a body that is not JSON (${JSON.stringify(text.slice(0, 80))})`,
          );
        }
      }
      if (response.status >= 400 && response.status !== 404) {
        throw new BackendRequestError(label, operation, `HTTP ${response.status}${reasonOf(text)}`);
      }
      return { status: response.status, body };
    }
  }

  return { params, call, pinStatus, page };
}

/** `Retry-After` in seconds or as an HTTP date; 1 s when absent or unreadable; at most 60 s. */
export function retryAfterMs(header: string | null, now: number = Date.now()): number {
  if (header === null) return 1_000;
  const trimmed = header.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) * 1000 : Date.parse(trimmed) - now;
  if (!Number.isFinite(ms)) return 1_000;
  return Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS);
}

/** The spec's error reason and details, for messages; never the request's headers. */
function reasonOf(text: string): string {
  try {
    const body = JSON.parse(text) as unknown;
    if (isRecord(body) && isRecord(body.error)) {
      const reason = typeof body.error.reason === "string" ? body.error.reason : "";
      const details = typeof body.error.details === "string" ? body.error.details : "";
      return `: ${[reason, details].filter(Boolean).join(": ").slice(0, 300)}`;
    }
  } catch {
    // not JSON: the status says enough
  }
  return "";
}

function causeText(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return cause instanceof Error ? cause.message : String(cause);
}

export function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringMap(value: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) if (typeof item === "string") out[key] = item;
  return out;
}
