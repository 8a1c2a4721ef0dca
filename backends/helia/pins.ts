import type { Helia } from "helia";
import type { CID } from "multiformats/cid";
import type { PinBackend, PinListing, PinOptions } from "../pin-backend.js";
import { type HeliaNode, nameOf } from "./node.js";
import { pinWalker } from "./walker.js";

/** The pin role of an embedded helia node: helia's pin store, recursive pins only. */
export function createHeliaPins(node: HeliaNode): PinBackend {
  const { ready, fail } = node;
  return {
    ...node.lifecycle,
    // Embedded: only Quasar's own processes pin here, and they still check (cheap in-process).
    exclusive: false,

    async pin(cid, options) {
      const helia = await ready();
      try {
        await pinWithName(helia, cid, options);
      } catch (error) {
        fail("pin", error, cid, options.signal);
      }
    },

    async unpin(cid, options) {
      const helia = await ready();
      try {
        for await (const _ of helia.pins.rm(cid, {
          signal: options.signal,
          walker: pinWalker(),
        })) {
          // draining the generator removes the pin
        }
      } catch (error) {
        if (nameOf(error) === "NotFoundError") return; // not pinned: idempotent success
        fail("unpin", error, undefined, options.signal);
      }
    },

    async *listPins(options) {
      const helia = await ready();
      try {
        for await (const pin of helia.pins.ls({ signal: options.signal })) {
          if (pin.depth !== Number.POSITIVE_INFINITY) continue; // recursive pins only
          yield toListing(pin.cid, pin.metadata);
        }
      } catch (error) {
        fail("listPins", error, undefined, options.signal);
      }
    },

    async getPin(cid, options) {
      const helia = await ready();
      try {
        const pin = await helia.pins.get(cid, { signal: options.signal });
        return pin.depth === Number.POSITIVE_INFINITY ? toListing(cid, pin.metadata) : undefined;
      } catch (error) {
        if (nameOf(error) === "NotFoundError") return undefined;
        return fail("getPin", error, undefined, options.signal);
      }
    },

    async storesPinNames() {
      // Pins keep the metadata of whoever pinned first (a second add is AlreadyPinnedError).
      return true;
    },
  };
}

/**
 * Pins `cid` recursively with `name` unless a recursive pin exists already. Shared with the
 * content role, which pins what it stores. Throws helia's own errors: callers map them.
 */
export async function pinWithName(helia: Helia, cid: CID, options: PinOptions): Promise<void> {
  options.signal?.throwIfAborted();
  // Not helia.pins.isPinned: that answers whether the BLOCK is pinned by anything, which is
  // also true for a block inside another pin's DAG, and for the root of a pin whose add was
  // cut short (the root's pinned-block record is written first, the pin record last) — in
  // both cases no recursive pin of this CID exists, and one must be made.
  if (await hasRecursivePin(helia, cid, options.signal)) return;
  let blocks = 0;
  try {
    for await (const _ of helia.pins.add(cid, {
      signal: options.signal,
      metadata: { name: options.name },
      walker: pinWalker(),
    })) {
      blocks += 1;
      options.onProgress?.(blocks);
    }
  } catch (error) {
    // A concurrent pin of the same CID won the race: pinned is what was asked.
    if (nameOf(error) === "AlreadyPinnedError") return;
    throw error;
  }
}

async function hasRecursivePin(helia: Helia, cid: CID, signal?: AbortSignal): Promise<boolean> {
  try {
    return (await helia.pins.get(cid, { signal })).depth === Number.POSITIVE_INFINITY;
  } catch (error) {
    if (nameOf(error) === "NotFoundError") return false;
    throw error;
  }
}

function toListing(cid: CID, metadata: Record<string, string | number | boolean>): PinListing {
  const name = metadata.name;
  return typeof name === "string" ? { cid, name } : { cid };
}
