import type { CID } from "multiformats/cid";
import {
  BackendAbortedError,
  BackendRequestError,
  BackendStreamError,
  ContentUnavailableError,
} from "../errors.js";
import { ndjson } from "../kubo/rpc.js";
import type { PinBackend, PinListing, PinOptions } from "../pin-backend.js";
import type { ClusterClient } from "./client.js";
import { readJson } from "./rest.js";
import {
  type ClusterPinInfo,
  copiesOf,
  firstError,
  inPinset,
  listingName,
  needsRecovery,
  parsePinInfo,
  QUASAR_META_KEY,
  QUASAR_META_VALUE,
  underWay,
} from "./status.js";
import { createStatusBatcher } from "./status-batch.js";

/** First wait between two status looks while a pin is under way; doubles up to the maximum. */
const POLL_FIRST_MS = 100;
const POLL_MAX_MS = 1_000;
/**
 * Looks in a row that may fail or find the peers behind the shared state before a pin gives
 * up (about 30 s at the longest wait); the caller's inactivity timeout usually decides first.
 */
const MAX_UNSURE_LOOKS = 30;
/** How long a getPin that found nothing spares the pin right after it its own look. */
const ABSENT_FRESH_MS = 1_000;

/**
 * The pin role of an IPFS Cluster: `POST /pins/{cid}` with Quasar's name, metadata mark,
 * replication factors, mode and origins; `DELETE /pins/{cid}`; the streamed `GET /pins`.
 *
 * A cluster pin is accepted at once and pinned by the peers' trackers afterwards, so `pin`
 * waits until enough peers hold the DAG (replication-min, at least one) and nobody is still
 * pinning, and reports each change of the peers' statuses as progress. Peers in pin_error or
 * unexpectedly_unpinned are recovered once (`POST /pins/{cid}/recover`); a second failure is
 * ContentUnavailableError. A pin this call created and that did not complete is removed
 * again, so a failed pin never stays in the pinset (as with Kubo's `pin/add`).
 */
export function createClusterPins(client: ClusterClient): PinBackend {
  const { label } = client.lifecycle;
  const { params, fail } = client;
  const target = Math.max(1, params.replicationMin ?? 1);
  // Pin calls still running, by CID, until their clean-up is done. The caller may give up on
  // a pin before it returns (an inactivity timeout resolves at once): a later pin or CAR
  // import of that CID waits for it, or its late DELETE would take the new pin away.
  const running = new Map<string, Promise<unknown>>();
  // Those whose caller gave up (signal fired) and that are still cleaning up: a CAR import,
  // whose root is known only once the cluster has added it, waits for all of them first.
  const abandoned = new Set<Promise<unknown>>();
  const settled = async (cid: CID) => {
    await running.get(cid.toV1().toString());
  };

  function pinQuery(name: string): URLSearchParams {
    const query = new URLSearchParams({ name, mode: "recursive" });
    query.set(`meta-${QUASAR_META_KEY}`, QUASAR_META_VALUE);
    if (params.replicationMin !== undefined)
      query.set("replication-min", String(params.replicationMin));
    if (params.replicationMax !== undefined)
      query.set("replication-max", String(params.replicationMax));
    if (params.origins.length > 0) query.set("origins", params.origins.join(","));
    return query;
  }

  const batcher = createStatusBatcher(() => client.rest, label);
  // CIDs getPin just found outside the pinset: the engine looks before it pins, and the pin
  // that follows at once need not ask again whether it creates the cluster pin.
  const justAbsent = new Map<string, number>();

  /** The CID's status on every peer, looked up with the other pins under way. */
  async function status(cid: CID, signal?: AbortSignal): Promise<ClusterPinInfo | undefined> {
    const info = parsePinInfo(await batcher.get(cid, signal));
    return info && inPinset(info) ? info : undefined;
  }

  /** Whether the pinset holds `cid` (`GET /allocations/{cid}`: the shared state only, no peer asked). */
  async function inState(cid: CID, signal?: AbortSignal): Promise<boolean> {
    try {
      await readJson(await client.rest.request("GET", `/allocations/${cid}`, { signal }));
      return true;
    } catch (error) {
      if (client.isNotPinned(error)) return false;
      throw error;
    }
  }

  async function waitPinned(cid: CID, options: PinOptions): Promise<void> {
    let seen = "";
    let progress = 0;
    let recovered = false;
    let wait = POLL_FIRST_MS;
    let unsure = 0;
    // A look that failed, or that found no peer reporting the CID in the pinset while the
    // shared state still holds it: the peers are busy (their Kubo slow to answer) or behind
    // the state, not done. Polled again, but not for ever when no inactivity timeout runs.
    const lookAgain = async (reason: unknown) => {
      if (options.signal?.aborted || ++unsure >= MAX_UNSURE_LOOKS) throw reason;
      await sleep(wait, options.signal);
      wait = Math.min(wait * 1.5, POLL_MAX_MS);
    };
    for (;;) {
      let info: ClusterPinInfo | undefined;
      try {
        info = await status(cid, options.signal);
      } catch (error) {
        await lookAgain(error);
        continue;
      }
      if (!info) {
        const left = new BackendRequestError(label, "pin", "the pin left the cluster's pinset");
        if (!(await inState(cid, options.signal))) throw left;
        await lookAgain(left);
        continue;
      }
      unsure = 0;
      const copies = copiesOf(info);
      const pending = underWay(info);
      const shape = [...info.peers.values()].map((p) => p.status).join(",");
      if (shape !== seen) {
        // Cluster reports no block counts: a change of any peer's status is the progress
        // the caller's inactivity timeout waits for.
        seen = shape;
        options.onProgress?.(++progress);
      }
      if (copies >= target && pending === 0) {
        options.onCopies?.(copies);
        return;
      }
      if (pending === 0 && needsRecovery(info)) {
        if (recovered) {
          throw new ContentUnavailableError(label, cid.toString(), {
            details: firstError(info) ?? "pin_error",
          });
        }
        recovered = true;
        await readJson(
          await client.rest.request("POST", `/pins/${cid}/recover`, { signal: options.signal }),
        );
      } else if (pending === 0 && copies > 0 && copies < target) {
        // The other allocated peers are unreachable (cluster_error): what is held is reported,
        // and the sweep counts the copies as they come back.
        options.onCopies?.(copies);
        return;
      }
      await sleep(wait, options.signal);
      wait = Math.min(wait * 1.5, POLL_MAX_MS);
    }
  }

  /**
   * DELETE, then wait (up to 10 s) until no peer tracks the CID any more: a pin of the same
   * CID sent while a peer's tracker is still unpinning it can be lost.
   */
  async function removeAbandoned(cid: CID): Promise<void> {
    const signal = AbortSignal.timeout(10_000);
    await readJson(await client.rest.request("DELETE", `/pins/${cid}`, { signal }));
    let wait = POLL_FIRST_MS;
    for (;;) {
      const info = parsePinInfo(
        await readJson(await client.rest.request("GET", `/pins/${cid}`, { signal })),
      );
      if (!info || [...info.peers.values()].every((p) => p.status === "unpinned")) return;
      await sleep(wait, signal);
      wait = Math.min(wait * 2, POLL_MAX_MS);
    }
  }

  /** One pin: POST, then wait for the trackers; a pin it created and could not complete goes. */
  async function pinOnce(cid: CID, options: PinOptions): Promise<void> {
    let created = false;
    try {
      const key = cid.toV1().toString();
      const absentAt = justAbsent.get(key);
      justAbsent.delete(key);
      created =
        (absentAt !== undefined && Date.now() - absentAt < ABSENT_FRESH_MS) ||
        !(await inState(cid, options.signal));
      await readJson(
        await client.rest.request("POST", `/pins/${cid}`, {
          query: pinQuery(options.name),
          signal: options.signal,
        }),
      );
      await waitPinned(cid, options);
    } catch (error) {
      if (created) {
        // Never leave a pin this call made and could not complete: the cluster would keep
        // trying behind Quasar's back. Best effort; the caller's signal may have fired.
        await removeAbandoned(cid).catch(() => undefined);
      }
      if (options.signal?.aborted) throw new BackendAbortedError(label, "pin", { cause: error });
      fail("pin", error, cid);
    }
  }

  return {
    ...client.lifecycle,
    exclusive: params.exclusive,
    countsCopies: true,
    pinConcurrency: params.concurrency,

    async pin(cid, options) {
      const key = cid.toV1().toString();
      const previous = running.get(key);
      const call = (async () => {
        await previous;
        await pinOnce(cid, options);
      })();
      const tracked = call.catch(() => undefined);
      running.set(key, tracked);
      const onAbort = () => {
        abandoned.add(tracked);
        void tracked.then(() => abandoned.delete(tracked));
      };
      options.signal?.addEventListener("abort", onAbort, { once: true });
      try {
        await call;
      } finally {
        options.signal?.removeEventListener("abort", onAbort);
        if (running.get(key) === tracked) running.delete(key);
      }
    },

    async unpin(cid, options) {
      try {
        await readJson(await client.rest.request("DELETE", `/pins/${cid}`, options));
      } catch (error) {
        if (client.isNotPinned(error)) return;
        fail("unpin", error);
      }
    },

    async *listPins(options) {
      try {
        const body = await client.rest.request("GET", "/pins", { signal: options.signal });
        const broken = (details: string) => new BackendStreamError(label, "GET /pins", { details });
        for await (const line of ndjson(body, broken)) {
          const info = parsePinInfo(line);
          if (info && inPinset(info)) yield toListing(info);
        }
      } catch (error) {
        fail("listPins", error);
      }
    },

    async getPin(cid, options) {
      // The shared state only (`GET /allocations/{cid}`: no peer asked), so no copies count:
      // ownership needs the name and Quasar's mark, the sweep's listing counts copies.
      try {
        const pin = await readJson(
          await client.rest.request("GET", `/allocations/${cid}`, { signal: options.signal }),
        );
        const info = parsePinInfo(pin);
        if (!info) return undefined;
        const name = listingName(info);
        return name === undefined ? { cid: info.cid.toV1() } : { cid: info.cid.toV1(), name };
      } catch (error) {
        if (client.isNotPinned(error)) {
          if (justAbsent.size >= 10_000) justAbsent.clear();
          justAbsent.set(cid.toV1().toString(), Date.now());
          return undefined;
        }
        return fail("getPin", error, cid);
      }
    },

    async storesPinNames() {
      // A later `POST /pins/{cid}` by anyone replaces the pin's name and metadata.
      return true;
    },

    async importCar(car, options) {
      try {
        await Promise.all(abandoned);
        const query = pinQuery(options.name);
        query.set("format", "car");
        const body = await client.rest.request("POST", "/add", {
          query,
          body: car,
          signal: options.signal,
        });
        // One AddedOutput line per root; the peers' trackers pin it afterwards, as for pin().
        let root: CID | undefined;
        for await (const line of ndjson(body, (message) => new Error(message))) {
          const added = parsePinInfo(line);
          if (added) root = added.cid;
        }
        if (!root) throw new BackendRequestError(label, "importCar", "the answer named no root");
        // A failed pin of the same root may still be on its way out; pin again after it.
        if (running.has(root.toV1().toString())) {
          await settled(root);
          await readJson(
            await client.rest.request("POST", `/pins/${root}`, {
              query: pinQuery(options.name),
              signal: options.signal,
            }),
          );
        }
        await waitPinned(root, { name: options.name, signal: options.signal });
      } catch (error) {
        if (options.signal?.aborted) {
          throw new BackendAbortedError(label, "importCar", { cause: error });
        }
        fail("importCar", error);
      }
    },
  };
}

function toListing(info: ClusterPinInfo): PinListing {
  const name = listingName(info);
  const listing: PinListing = { cid: info.cid.toV1(), copies: copiesOf(info) };
  if (name !== undefined) listing.name = name;
  if (needsRecovery(info)) listing.needsRecovery = true;
  return listing;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
