import type { CID } from "multiformats/cid";

/**
 * The contract between the reconciler engine (and the API) and a storage backend.
 * Implementations live in backends/<designator>.ts and are built from a
 * connection string by backends/index.ts; every one passes the conformance
 * suite in backends/conformance.ts. The engine never knows which kind it drives.
 *
 * CIDs are multiformats CID objects; the backend chooses its own wire form.
 * Every method honours `signal` (aborts promptly, leaving no half-done state it reports as done).
 * Failures are thrown as BackendError subclasses (backends/errors.ts); whether to
 * retry is decided by the class.
 */
export interface Backend {
  /** designator + "-" + a hash of the connection string without secrets: stable when a token rotates. */
  readonly id: string;
  /** The scheme before an optional "+": "ipfs", "helia", later "psa", "cluster". */
  readonly designator: string;
  /** The connection string with every secret masked, safe for logs and answers. */
  readonly label: string;
  /**
   * The operator declares Quasar the node's only user. Quasar then skips its looks for foreign
   * pins (one `getPin` before each new pin, and before each unpin or upload pin) and counts
   * every pin it makes as its own. Wrong on a shared node: another user's pin of a CID Quasar
   * also pinned would be removed when Quasar releases it.
   */
  readonly exclusive: boolean;

  /** Connects or starts the node. Idempotent; may be called again after close(). */
  open(): Promise<void>;
  /** Releases every resource. Idempotent. */
  close(): Promise<void>;
  /** Cheap liveness probe: true when the backend answers now. Never throws. */
  ping(signal?: AbortSignal): Promise<boolean>;

  /**
   * Pins `cid` recursively, fetching missing blocks from the network. Idempotent: pinning a
   * pinned CID succeeds. Calls `onProgress` whenever blocks arrive so the caller can enforce
   * an inactivity timeout (abort through `signal`). Pins carry `name` where the backend
   * supports names, so Quasar's pins are recognisable on a shared node.
   */
  pin(cid: CID, options: PinOptions): Promise<void>;
  /** Removes the recursive pin. Idempotent: unpinning an unpinned CID ("not pinned") succeeds. */
  unpin(cid: CID, options: { signal?: AbortSignal }): Promise<void>;
  /** Streams every recursive pin (never type=all), without loading the whole list in memory. */
  listPins(options: { signal?: AbortSignal }): AsyncIterable<PinListing>;
  /**
   * The recursive pin of one CID, or undefined when it is not pinned recursively. Where a
   * recursive pin of a CID replaces a direct pin of it (Kubo), a direct pin is reported too
   * (`direct: true`) when there is no recursive one: someone else's pin that a pin by Quasar
   * would take over.
   */
  getPin(cid: CID, options: { signal?: AbortSignal }): Promise<PinListing | undefined>;
  /**
   * True when pins carry names here and a later pin of the same CID by anyone replaces the
   * name (Kubo ≥ 0.26 and js-ipfs; helia keeps the first pinner's). Then a pin Quasar made
   * that no longer carries QUASAR_PIN_NAME at unpin time was pinned again by someone else,
   * and is left in place. False (old Kubo): names tell nothing, the ledger alone decides.
   */
  storesPinNames(options: { signal?: AbortSignal }): Promise<boolean>;
  /** True when the root block is stored locally; never fetches from the network. */
  hasBlock(cid: CID, options: { signal?: AbortSignal }): Promise<boolean>;

  /** Exports the whole DAG under `cid` as a CAR stream (used to copy content between backends). */
  exportCar(cid: CID, options: { signal?: AbortSignal }): AsyncIterable<Uint8Array>;
  /** Imports a CAR stream and pins its roots with `name`. */
  importCar(car: AsyncIterable<Uint8Array>, options: PinOptions): Promise<void>;

  /**
   * Stores a file as UnixFS (CIDv1, raw leaves), pinned with `name` unless `pin: false`;
   * streams, never buffers whole.
   */
  addFile(content: AsyncIterable<Uint8Array>, options: StoreOptions): Promise<AddResult>;
  /** Stores a JSON value as dag-json or dag-cbor (Kubo's dag/put defaults: dag-cbor), pinned unless `pin: false`. */
  putDag(value: unknown, options: StoreOptions & { codec?: "dag-cbor" | "dag-json" }): Promise<CID>;
  /** Reads a DAG node, following `path` inside it. */
  getDag(cid: CID, options: { path?: string; signal?: AbortSignal }): Promise<DagNode>;
  /** Streams a UnixFS file's bytes. */
  cat(
    cid: CID,
    options: { offset?: number; length?: number; signal?: AbortSignal },
  ): AsyncIterable<Uint8Array>;
}

export type PinOptions = {
  /** Pin name; Quasar uses QUASAR_PIN_NAME so its pins are recognisable on shared nodes. */
  name: string;
  signal?: AbortSignal;
  /** Called with the number of blocks fetched so far, whenever it grows. */
  onProgress?: (blocks: number) => void;
};

export type StoreOptions = PinOptions & {
  /**
   * Default true. False stores the blocks without pinning them, so the caller can first look
   * for an existing (possibly foreign) pin and record its intent before pinning (the API's
   * upload path: it must never unpin a pin it did not create).
   */
  pin?: boolean;
};

export type PinListing = {
  cid: CID;
  name?: string;
  /** A direct pin (the root block only): never Quasar's, which pins recursively. */
  direct?: true;
};
export type AddResult = { cid: CID; size: number };
export type DagNode = { value: unknown; remainderPath: string };

/** The pin name Quasar gives every pin it creates. */
export const QUASAR_PIN_NAME = "quasar";
