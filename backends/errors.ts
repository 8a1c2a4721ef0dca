import { NonRetryableError, RetryableError } from "@/core/errors.js";

/**
 * Every failure a storage backend reports. Whether the engine retries is decided by the
 * class (RetryableError vs NonRetryableError), never by parsing messages. Messages and
 * details carry the backend's masked label, never its raw connection string.
 */

/** The backend does not answer: connection refused or reset, DNS failure, HTTP 5xx without a daemon error, or a broken stream. */
export class BackendUnavailableError extends RetryableError {
  override name = "BackendUnavailableError";
  constructor(
    readonly backend: string,
    options: { cause?: unknown; details?: string } = {},
  ) {
    // The details (a command and an errno such as ECONNREFUSED) hold no secrets: tokens travel in headers.
    super(
      `backend ${backend} is unavailable${options.details ? `: ${options.details}` : ""}`,
      options,
    );
  }
}

/** A streamed answer ended early or carried an error after its 200 header (X-Stream-Error trailer). */
export class BackendStreamError extends RetryableError {
  override name = "BackendStreamError";
  constructor(
    readonly backend: string,
    readonly operation: string,
    options: { cause?: unknown; details?: string } = {},
  ) {
    super(
      `${operation} on backend ${backend} broke off mid-stream${options.details ? `: ${options.details}` : ""}`,
      options,
    );
  }
}

/** The caller's signal aborted the operation (an inactivity timeout, shutdown). Nothing was reported as done. */
export class BackendAbortedError extends RetryableError {
  override name = "BackendAbortedError";
  constructor(
    readonly backend: string,
    readonly operation: string,
    options: { cause?: unknown } = {},
  ) {
    super(`${operation} on backend ${backend} was aborted`, options);
  }
}

/** The content (or one of its blocks) is not available: not stored locally and not fetchable now. May succeed later. */
export class ContentUnavailableError extends RetryableError {
  override name = "ContentUnavailableError";
  constructor(
    readonly backend: string,
    readonly cid: string,
    options: { cause?: unknown; details?: string } = {},
  ) {
    super(`content ${cid} is not available on backend ${backend}`, options);
  }
}

/** The backend refused the request with its own message (bad argument, not a file, unsupported codec). Retrying the same request will not help. */
export class BackendRequestError extends NonRetryableError {
  override name = "BackendRequestError";
  constructor(
    readonly backend: string,
    readonly operation: string,
    readonly backendMessage: string,
    options: { cause?: unknown } = {},
  ) {
    super(`${operation} refused by backend ${backend}: ${backendMessage}`, options);
  }
}

/** The value given to putDag cannot be encoded with the requested codec. */
export class InvalidDagValueError extends NonRetryableError {
  override name = "InvalidDagValueError";
}

/**
 * The backend cannot build a DAG the way the caller asked (e.g. helia's rabin chunker cuts
 * other chunks than Kubo's): refused before anything is stored, never a different CID.
 */
export class UnsupportedImportError extends NonRetryableError {
  override name = "UnsupportedImportError";
}

/** A connection string that cannot be parsed or names no known backend kind; stops start-up. */
export class InvalidConnectionStringError extends NonRetryableError {
  override name = "InvalidConnectionStringError";
  constructor(
    /** The connection string with secrets masked. */
    readonly connectionString: string,
    reason: string,
    acceptedForms: readonly string[],
  ) {
    super(`invalid backend connection string "${connectionString}": ${reason}`, {
      details: `accepted forms: ${acceptedForms.join(", ")}`,
    });
  }
}

/** Two connection strings designate the same backend (same id). */
export class DuplicateBackendError extends NonRetryableError {
  override name = "DuplicateBackendError";
  constructor(
    readonly id: string,
    readonly labels: readonly [string, string],
  ) {
    super(`backend ${id} is configured twice: "${labels[0]}" and "${labels[1]}"`);
  }
}

/**
 * A backend was given a job its kind cannot do: a pin-only backend (IPFS Cluster, a Pinning
 * Service) where bytes must be stored or served. A configuration error: stops start-up.
 */
export class MissingBackendRoleError extends NonRetryableError {
  override name = "MissingBackendRoleError";
  constructor(
    readonly backend: string,
    readonly role: "pins" | "content",
    readonly purpose: string,
  ) {
    super(`backend ${backend} cannot ${purpose}: it has no ${role} role`, {
      details:
        role === "content"
          ? "it pins but cannot store or serve bytes; put a backend that stores content (helia://…, ipfs://…) there instead"
          : "it cannot pin; use a backend that pins",
    });
  }
}

/** Any error a backend throws. */
export type BackendError =
  | BackendUnavailableError
  | BackendStreamError
  | BackendAbortedError
  | ContentUnavailableError
  | BackendRequestError
  | InvalidDagValueError
  | UnsupportedImportError;

export function isBackendError(error: unknown): error is BackendError {
  return (
    error instanceof BackendUnavailableError ||
    error instanceof BackendStreamError ||
    error instanceof BackendAbortedError ||
    error instanceof ContentUnavailableError ||
    error instanceof BackendRequestError ||
    error instanceof InvalidDagValueError ||
    error instanceof UnsupportedImportError
  );
}
