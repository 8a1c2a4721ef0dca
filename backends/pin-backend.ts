import type { CID } from "multiformats/cid";
import type { BackendLifecycle } from "./lifecycle.js";

/**
 * The pin role: what the reconciler engine drives to keep the desired set pinned. It says
 * which CIDs a node keeps, never what their bytes are, so any pinning system can play it
 * (Kubo, helia, later IPFS Cluster and Pinning Service API endpoints, which cannot serve
 * content). Every implementation passes backends/pin-conformance.ts.
 *
 * Ownership: Quasar never removes a pin it did not create. The facts that decision rests on
 * come from here: the pin's name (QUASAR_PIN_NAME), whether names survive a re-pin by someone
 * else (storesPinNames), and whether the operator declared the node Quasar's alone (exclusive).
 */
export interface PinBackend extends BackendLifecycle {
  /**
   * The operator declares Quasar the node's only user. Quasar then skips its looks for foreign
   * pins (one `getPin` before each new pin, and before each unpin or upload pin) and counts
   * every pin it makes as its own. Wrong on a shared node: another user's pin of a CID Quasar
   * also pinned would be removed when Quasar releases it.
   */
  readonly exclusive: boolean;

  /**
   * The backend keeps several copies of a pin and says how many (listings' `copies`, pin's
   * `onCopies`): IPFS Cluster. QUASAR_MIN_REPLICAS then counts its copies, not the backend once.
   */
  readonly countsCopies?: true;

  /**
   * Commands worth running at once on this backend when more than QUASAR_PIN_CONCURRENCY:
   * a pin that mostly waits on the backend's own workers (IPFS Cluster's trackers, polled in
   * shared batches) costs Quasar little while it waits.
   */
  readonly pinConcurrency?: number;

  /**
   * Pins `cid` recursively, fetching missing blocks from the network. Idempotent: pinning a
   * pinned CID succeeds (and keeps the existing pin). Calls `onProgress` whenever the count of
   * blocks fetched grows, so the caller can enforce an inactivity timeout (abort through
   * `signal`). Pins carry `name` where the backend supports names, so Quasar's pins are
   * recognisable on a shared node. Never records a pin of an incomplete DAG.
   *
   * Throws ContentUnavailableError when the content cannot be fetched now, BackendAbortedError
   * when `signal` fires, BackendUnavailableError when the node does not answer,
   * BackendRequestError when it refuses.
   */
  pin(cid: CID, options: PinOptions): Promise<void>;
  /**
   * Removes the recursive pin of `cid`. Idempotent: unpinning an unpinned CID succeeds. Only
   * the pin goes: the blocks may stay until the node collects garbage. The caller decides
   * ownership first; this method removes whatever recursive pin there is.
   */
  unpin(cid: CID, options: { signal?: AbortSignal }): Promise<void>;
  /**
   * Streams every recursive pin (never indirect or direct ones), without loading the whole
   * list in memory: the first pin arrives before the last is read. A stream that breaks off
   * throws (BackendStreamError) rather than ending early, so a partial listing is never
   * taken for the whole.
   */
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
   * Constant for one node; may ask the node once.
   */
  storesPinNames(options: { signal?: AbortSignal }): Promise<boolean>;
  /**
   * Only on pin-only backends that can take bytes as a CAR (IPFS Cluster's `POST
   * /add?format=car`): imports the CAR and pins its root with `name`, so the engine can copy
   * content that exists only on another backend. Backends with a content role use that.
   */
  importCar?(
    car: AsyncIterable<Uint8Array>,
    options: { name: string; signal?: AbortSignal },
  ): Promise<void>;
  /**
   * Optional. Multiaddrs where other IPFS nodes reach this node, each ending in
   * `/p2p/<peer id>` (the Pinning Service API's `delegates`); just `/p2p/<peer id>` when the
   * node listens nowhere dialable. Throws BackendError subclasses.
   */
  addresses?(options: { signal?: AbortSignal }): Promise<string[]>;
  /**
   * Optional, best effort. Dials the given multiaddrs (a pin request's `origins`) so the
   * content is found sooner; never throws for an address that cannot be dialled.
   */
  connect?(addresses: readonly string[], options: { signal?: AbortSignal }): Promise<void>;
}

export type PinOptions = {
  /** Pin name; Quasar uses QUASAR_PIN_NAME so its pins are recognisable on shared nodes. */
  name: string;
  signal?: AbortSignal;
  /** Called with the number of blocks fetched so far, whenever it grows. */
  onProgress?: (blocks: number) => void;
  /**
   * Called once the pin holds, by backends that keep several copies (IPFS Cluster: the peers
   * that pinned it), so QUASAR_MIN_REPLICAS counts copies rather than backends.
   */
  onCopies?: (copies: number) => void;
};

/** One recursive pin; `name` is absent when the pin has none (or the node keeps none). */
export type PinListing = {
  cid: CID;
  /**
   * The CID as the desired set spells it (CIDv1, base32), where the backend read it that way
   * from the node and so never had to build it (a sweep compares these only). Read it with
   * listingKey().
   */
  key?: string;
  name?: string;
  /** A direct pin (the root block only): never Quasar's, which pins recursively. */
  direct?: true;
  /**
   * Copies the backend holds now, where it keeps several (IPFS Cluster: peers whose tracker
   * says pinned; 0 while every peer is still pinning). Absent: one.
   */
  copies?: number;
  /** Some copy failed or vanished behind the backend's back: pinning again repairs it. */
  needsRecovery?: true;
};

/** The key a listed pin is compared by: CIDv1 in base32, as the desired set stores it. */
export function listingKey(pin: PinListing): string {
  return pin.key ?? pin.cid.toV1().toString();
}

/** The pin name Quasar gives every pin it creates. */
export const QUASAR_PIN_NAME = "quasar";
