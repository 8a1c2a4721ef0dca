import type { CID } from "multiformats/cid";
import type { UnixfsAddOptions } from "./add-options.js";
import type { BackendLifecycle } from "./lifecycle.js";
import type { PinOptions } from "./pin-backend.js";

/**
 * The content role: stores and serves bytes. The API uploads and reads through it; the
 * reconciler uses only its CAR export and import, to copy a DAG from a node that holds it to
 * one that cannot fetch it. Every implementation passes backends/content-conformance.ts.
 *
 * A content backend today always plays the pin role too, on the same node (helia, Kubo):
 * "pinned with `name`" below is that node's pin, the one its PinBackend lists.
 */
export interface ContentBackend extends BackendLifecycle {
  /**
   * True when the root block of `cid` is stored locally. Never fetches from the network and
   * answers within seconds either way.
   */
  hasBlock(cid: CID, options: { signal?: AbortSignal }): Promise<boolean>;

  /**
   * Stores a file as UnixFS the way Kubo's `add` does with the same flags: `options.unixfs`
   * (backends/add-options.ts; default Kubo's defaults: CIDv0, dag-pb leaves, 256 KiB chunks,
   * 174 links per node), so the same bytes give the same CID as Kubo on every backend whatever
   * the pieces they arrive in. A way of building the DAG the backend cannot reproduce exactly
   * throws UnsupportedImportError before anything is stored. `onlyHash` computes the CID and
   * stores and pins nothing. Streams, never buffers the whole file. Pinned with `name` unless
   * `pin: false`. An error thrown by `content` itself (an upload cut off, a size limit)
   * reaches the caller unchanged; nothing is pinned then.
   */
  addFile(
    content: AsyncIterable<Uint8Array>,
    options: StoreOptions & { unixfs?: UnixfsAddOptions },
  ): Promise<AddResult>;
  /**
   * Stores one block under `cid` (its hash already computed by the caller, e.g. a UnixFS
   * directory node, backends/unixfs-directory.ts), unpinned. Refuses bytes that do not hash
   * to `cid` (BackendRequestError).
   */
  putBlock(cid: CID, bytes: Uint8Array, options: { signal?: AbortSignal }): Promise<void>;
  /**
   * Stores a JSON value as dag-cbor (Kubo's dag/put default) or dag-json, read the way Kubo's
   * `dag put --input-codec=dag-json` reads it (`{"/": "bafy…"}` is a link). Pinned unless
   * `pin: false`. Throws InvalidDagValueError for a value the codec cannot encode.
   */
  putDag(value: unknown, options: StoreOptions & { codec?: "dag-cbor" | "dag-json" }): Promise<CID>;
  /**
   * Reads a DAG node, following `path` inside it and through links. A path that does not
   * exist throws BackendRequestError; a block not available throws ContentUnavailableError.
   */
  getDag(cid: CID, options: { path?: string; signal?: AbortSignal }): Promise<DagNode>;
  /**
   * The raw bytes of one locally stored block, exactly as stored (Kubo's `block/get`). A
   * block not available throws ContentUnavailableError; never fetches from the network.
   */
  getBlock(cid: CID, options: { signal?: AbortSignal }): Promise<Uint8Array>;
  /**
   * Streams a UnixFS file's bytes, from `offset` for `length` bytes when given. A stream that
   * breaks off throws (BackendStreamError) rather than ending early.
   */
  cat(
    cid: CID,
    options: { offset?: number; length?: number; signal?: AbortSignal },
  ): AsyncIterable<Uint8Array>;

  /**
   * Exports the whole DAG under `cid` as a CARv1 stream, each block once; used to copy
   * content between backends. A block missing midway throws (never a short, valid-looking CAR).
   */
  exportCar(cid: CID, options: { signal?: AbortSignal }): AsyncIterable<Uint8Array>;
  /**
   * Imports a CAR stream and pins its roots with `name` (as `pin` does: idempotent). Blocks
   * are checked against their CIDs. An error thrown by `car` itself (another backend's broken
   * export) reaches the caller with its class unchanged.
   */
  importCar(car: AsyncIterable<Uint8Array>, options: PinOptions): Promise<void>;
}

export type StoreOptions = PinOptions & {
  /**
   * Default true. False stores the blocks without pinning them, so the caller can first look
   * for an existing (possibly foreign) pin and record its intent before pinning (the API's
   * upload path: it must never unpin a pin it did not create).
   */
  pin?: boolean;
};

export type AddResult = {
  cid: CID;
  /** The file's bytes. */
  size: number;
  /** Kubo's cumulative DAG size (`add`'s `Size`): the root block plus every link's size. */
  dagSize: number;
};
export type DagNode = { value: unknown; remainderPath: string };
