import type { CID } from "multiformats/cid";
import { type ContentCapableBackend, hasContent } from "@/backends/backend.js";
import { InvalidDagValueError, UnsupportedImportError } from "@/backends/errors.js";
import { type PinListing, QUASAR_PIN_NAME } from "@/backends/pin-backend.js";
import { describeError } from "@/core/errors.js";
import { readLimited } from "./body.js";
import { scrub } from "./content.js";
import type { ApiCommon } from "./context.js";
import { findUnrepresentable } from "./dag-value.js";
import {
  ClientClosedError,
  ClientError,
  InvalidArgumentError,
  MissingFileError,
  UnavailableError,
} from "./errors.js";
import { multipartBoundary, parseMultipart } from "./multipart.js";
import type { UploadRecordOutcome } from "./ports.js";

/**
 * Optimistic pinning: store on the first backend WITHOUT pinning, look at the backend's pin
 * and record, and only then pin. Two rules hold on every path:
 *   - never unpin content Quasar did not pin (a foreign user's pin on a shared Kubo node);
 *   - never leave a pin Quasar does not know about.
 * They are kept by ordering, so no failure needs an unpin to undo it.
 *
 * Order of events for one upload:
 *   1. the file part streams from the socket through the limit counter into backend.addFile
 *      with `pin: false` (nothing is buffered whole): the blocks are stored, nothing pinned;
 *   2. the rest of the multipart body is read to its closing boundary (a second file or a
 *      malformed tail is refused: 400, nothing pinned, nothing to undo);
 *   3. backend.getPin tells whether a recursive pin already exists;
 *   4. store.recordUpload writes, in ONE transaction, the optimistic pin and the ledger row
 *      through the ledger's transitions: an existing pin the ledger does not own is adopted
 *      (owned=false, never unpinned); one it owns is kept (record_owned, which also cancels
 *      a queued unpin); one the reconciler is pinning right now is left to its outcome;
 *      otherwise Quasar's intent to pin (queued, owned) is recorded. If this fails: 503,
 *      and nothing was pinned;
 *   5. on an intent, the API pins, then confirms (record_owned → pinned) without making the
 *      client wait for it. If the pin fails the client gets 503 and the intent goes to the
 *      reconciler's queue at once: the CID is desired by the optimistic row, so the engine
 *      pins it (the client may also retry). A confirmation that fails (or is still in flight
 *      when the process stops) is only logged: the pin exists and the ledger already holds
 *      Quasar's intent, which the engine confirms after its grace period
 *      (UPLOAD_PIN_GRACE_MS) with an idempotent pin. Right after the answer the ledger
 *      may therefore not say `pinned` yet, for a few milliseconds.
 * A client never gets a CID unless the content is stored and pinned.
 *
 * Left open: a foreign user pinning the same CID between steps 3 and 5 shares Kubo's one pin
 * per CID with Quasar, which then counts it as its own (the engine's pin has the same race).
 * Blocks stored in step 1 but never pinned (refused tail, failed record) stay unpinned:
 * garbage the node's GC may collect.
 */

export type StoredUpload = { cid: CID; size: number };
export type UploadKind = "add" | "dag";

/** Field names that carry the file: `entry` (the Aragon client) and `file` (Kubo clients). */
export const QUASAR_FILE_FIELDS = ["entry"] as const;
export const KUBO_FILE_FIELDS = ["file"] as const;

/**
 * The uploading backend: the first configured one, which stores the bytes (content role) and
 * pins them (pin role). api/main.ts refuses to start when it cannot store content.
 */
export function uploadBackend(common: ApiCommon): ContentCapableBackend {
  const backend = common.backends[0];
  if (!backend) throw new UnavailableError("BACKEND_UNAVAILABLE", "no backend is configured");
  if (!hasContent(backend)) {
    throw new UnavailableError("BACKEND_UNAVAILABLE", "the first backend cannot store content");
  }
  return backend;
}

function isFileField(name: string, fields: readonly string[]): boolean {
  // Kubo clients append "-<n>" for later files and "?mode=…&mtime=…" for metadata.
  return fields.some((field) => name === field || name.startsWith(`${field}?`));
}

/**
 * Streams the single file of a multipart upload into the first backend and records it.
 * Throws ClientError for bad input (nothing stored), UnavailableError when the backend or
 * the database fails (nothing left pinned).
 */
export async function addMultipartUpload(
  common: ApiCommon,
  request: Request,
  options: { fields: readonly string[]; uploader: string; signal: AbortSignal },
): Promise<StoredUpload> {
  const boundary = multipartBoundary(request.headers.get("content-type") ?? undefined);
  const source = readLimited(
    request,
    common.config.QUASAR_MAX_UPLOAD_BYTES,
    options.signal,
    common.config.QUASAR_BODY_IDLE_TIMEOUT,
  );
  const parts = parseMultipart(source, boundary);
  const backend = uploadBackend(common);

  for (;;) {
    const next = await parts.next();
    if (next.done) throw new MissingFileError(options.fields);
    const part = next.value;
    if (part.name.startsWith("dir") && isFileField("file", options.fields)) {
      throw new InvalidArgumentError("directories are not supported; upload one file per request");
    }
    if (!isFileField(part.name, options.fields)) continue;

    const stored = await storeOnBackend(
      common,
      backend,
      "add",
      (signal) => {
        let size = 0;
        const counted = (async function* () {
          for await (const chunk of part.body) {
            size += chunk.byteLength;
            yield chunk;
          }
        })();
        return backend.content
          .addFile(counted, { name: QUASAR_PIN_NAME, signal, pin: false })
          .then((result) => ({ cid: result.cid, size }));
      },
      options.signal,
    );

    // The rest of the body must be well formed and hold no second file. Nothing is pinned yet.
    for (let rest = await parts.next(); !rest.done; rest = await parts.next()) {
      if (isFileField(rest.value.name, options.fields) || rest.value.name.startsWith("dir")) {
        throw new InvalidArgumentError("only one file per request is supported");
      }
    }
    await recordAndPin(common, backend, stored, "add", options);
    common.metrics.uploads.inc({ kind: "add", outcome: "stored" });
    common.metrics.uploadBytes.inc({ kind: "add" }, stored.size);
    return stored;
  }
}

/** Stores one DAG node on the first backend and records it. */
export async function putDagUpload(
  common: ApiCommon,
  value: unknown,
  options: { codec: "dag-cbor" | "dag-json"; uploader: string; signal: AbortSignal; size: number },
): Promise<StoredUpload> {
  const unrepresentable = findUnrepresentable(value);
  if (unrepresentable) {
    common.metrics.uploads.inc({ kind: "dag", outcome: "rejected" });
    throw new InvalidArgumentError(
      `the value at ${unrepresentable.path || "/"} cannot be stored as ${options.codec}: ${unrepresentable.problem}`,
    );
  }
  const backend = uploadBackend(common);
  const stored = await storeOnBackend(
    common,
    backend,
    "dag",
    async (signal) => ({
      cid: await backend.content.putDag(value, {
        name: QUASAR_PIN_NAME,
        codec: options.codec,
        signal,
        pin: false,
      }),
      size: options.size,
    }),
    options.signal,
  );
  await recordAndPin(common, backend, stored, "dag", options);
  common.metrics.uploads.inc({ kind: "dag", outcome: "stored" });
  common.metrics.uploadBytes.inc({ kind: "dag" }, stored.size);
  return stored;
}

/**
 * Runs the backend write. A client error raised by the request body while the backend was
 * reading it (limit crossed, malformed multipart) is rethrown as is, whatever the backend
 * wrapped it in; any other failure is the backend's and becomes 503.
 */
export async function storeOnBackend(
  common: ApiCommon,
  backend: ContentCapableBackend,
  kind: UploadKind,
  write: (signal: AbortSignal) => Promise<StoredUpload>,
  signal: AbortSignal,
): Promise<StoredUpload> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal.reason);
  signal.addEventListener("abort", onAbort, { once: true });
  const stop = common.metrics.uploadPhaseSeconds.startTimer({ phase: "store" });
  try {
    const stored = await write(controller.signal);
    stop();
    return stored;
  } catch (error) {
    if (signal.aborted) {
      // The client went away mid-body: its fault, not the backend's; nothing was pinned.
      common.metrics.uploads.inc({ kind, outcome: "aborted" });
      throw new ClientClosedError(error);
    }
    const clientError =
      findClientError(error) ??
      (error instanceof InvalidDagValueError || error instanceof UnsupportedImportError
        ? new InvalidArgumentError(
            `${error.shortMessage}${error.details ? `: ${scrub(error.details)}` : ""}`,
          )
        : undefined);
    common.metrics.uploads.inc({ kind, outcome: clientError ? "rejected" : "failed" });
    if (clientError) throw clientError;
    throw new UnavailableError(
      "BACKEND_UNAVAILABLE",
      "the storage backend could not store the upload",
      {
        details: `backend ${backend.id}`,
        cause: error,
      },
    );
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

function findClientError(error: unknown): ClientError | undefined {
  // Backends may wrap the source's error (as `cause`, or in an AggregateError).
  for (let current = error, depth = 0; current && depth < 8; depth++) {
    if (current instanceof ClientError) return current;
    if (current instanceof AggregateError) {
      const inner = current.errors.map(findClientError).find(Boolean);
      if (inner) return inner;
    }
    current = current instanceof Error ? current.cause : undefined;
  }
  return undefined;
}

/**
 * Steps 3–5 of the header: look at the backend's pin, record, then pin if the record says so.
 * Throws UnavailableError (503) when the content is not both recorded and pinned.
 */
export async function recordAndPin(
  common: ApiCommon,
  backend: ContentCapableBackend,
  stored: StoredUpload,
  kind: UploadKind,
  options: { uploader: string; signal: AbortSignal },
): Promise<void> {
  // Recorded, looked up and pinned under the CIDv1: the key of the ledger and of the engine,
  // which unpins by it. Kubo keys pins by CID, so a pin made under the CIDv0 an add answers
  // (Qm…) would not be the one the engine later removes, and would be left behind.
  const key = stored.cid.toV1();
  const cid = key.toString();
  let existing: PinListing | undefined;
  const stopLook = common.metrics.uploadPhaseSeconds.startTimer({ phase: "look" });
  try {
    // On a node the operator declared Quasar's alone, every pin there is Quasar's own.
    if (!backend.pins.exclusive)
      existing = await backend.pins.getPin(key, { signal: options.signal });
    stopLook();
  } catch (error) {
    common.metrics.uploads.inc({ kind, outcome: "failed" });
    throw new UnavailableError(
      "BACKEND_UNAVAILABLE",
      "the storage backend could not be asked for its pin",
      {
        details: `backend ${backend.id}`,
        cause: error,
      },
    );
  }

  const stopRecord = common.metrics.uploadPhaseSeconds.startTimer({ phase: "record" });
  let outcome: UploadRecordOutcome;
  try {
    outcome = await common.store.recordUpload({
      cid,
      size: stored.size,
      uploader: options.uploader,
      backendId: backend.id,
      now: new Date(common.now()),
      pinnedOnBackend: existing !== undefined,
      pinDeadlineMs: common.config.QUASAR_PIN_DEADLINE,
    });
    stopRecord();
  } catch (error) {
    // Nothing is pinned yet: nothing to undo.
    common.metrics.uploads.inc({ kind, outcome: "failed" });
    throw new UnavailableError("STORAGE_FAILED", "the upload could not be recorded", {
      cause: error,
    });
  }
  if (outcome === "adopted") {
    common.logger.info({
      msg: "uploaded content was already pinned by someone else: adopted, never unpinned",
      cid,
      backend: backend.id,
    });
  }
  if (outcome !== "pin") return;

  const stopPin = common.metrics.uploadPhaseSeconds.startTimer({ phase: "pin" });
  try {
    await backend.pins.pin(key, { name: QUASAR_PIN_NAME, signal: options.signal });
    stopPin();
  } catch (error) {
    common.metrics.uploads.inc({ kind, outcome: "failed" });
    // The intent stays recorded (the CID is desired): hand it to the reconciler now.
    await common.store
      .requeueUploadPin({
        cid,
        backendId: backend.id,
        now: new Date(common.now()),
        error: describeError(error),
      })
      .catch((requeueError: unknown) => {
        common.logger.warn({
          msg: "upload pin failed and could not be requeued; the reconciler takes it after its grace period",
          cid,
          backend: backend.id,
          err: describeError(requeueError),
        });
      });
    throw new UnavailableError(
      "BACKEND_UNAVAILABLE",
      "the storage backend could not pin the upload",
      {
        details: `backend ${backend.id}; Quasar keeps trying to pin it`,
        cause: error,
      },
    );
  }
  // The answer does not wait for the confirmation: the pin exists and the ledger already
  // holds Quasar's intent (owned), so a lost confirmation only lets the engine confirm it
  // after its grace period with an idempotent pin. Waiting for it cost each upload a second
  // database transaction on its critical path (bench/api.ts: about a quarter of an upload's
  // time under load).
  const stopConfirm = common.metrics.uploadPhaseSeconds.startTimer({ phase: "confirm" });
  void common.store
    .confirmUploadPin({ cid, backendId: backend.id, now: new Date(common.now()) })
    .then(
      () => {
        stopConfirm();
      },
      (error: unknown) => {
        common.logger.warn({
          msg: "upload pinned but its confirmation was not recorded; the reconciler confirms it",
          cid,
          backend: backend.id,
          err: describeError(error),
        });
      },
    );
}
