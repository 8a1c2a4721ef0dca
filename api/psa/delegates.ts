import type { Logger } from "pino";
import type { Backend } from "@/backends/backend.js";
import { describeError } from "@/core/errors.js";

/** At most this many delegates (the spec's bound). */
export const MAX_DELEGATES = 20;
/** How long the backends' addresses are reused before asking again. */
const REFRESH_MS = 60_000;
const ASK_TIMEOUT_MS = 5_000;

/**
 * The `delegates` of every PinStatus: the multiaddrs (each ending in `/p2p/<peer id>`) of the
 * backends' nodes that can tell (Kubo's `id`), asked once a minute. Backends that cannot
 * (helia, pin-only services) add nothing; when none can, the list is empty and clients just
 * skip connecting to a delegate.
 */
export type Delegates = { get(): Promise<string[]> };

export function createDelegates(params: {
  backends: readonly Backend[];
  logger: Logger;
  now: () => number;
}): Delegates {
  let cached: { at: number; list: string[] } | undefined;
  let asking: Promise<string[]> | undefined;

  const ask = async (): Promise<string[]> => {
    const lists = await Promise.all(
      params.backends.map(async (backend) => {
        if (!backend.pins.addresses) return [];
        try {
          return await backend.pins.addresses({ signal: AbortSignal.timeout(ASK_TIMEOUT_MS) });
        } catch (error) {
          params.logger.warn({
            msg: "a backend did not tell its addresses; it is left out of the delegates",
            backend: backend.id,
            err: describeError(error),
          });
          return [];
        }
      }),
    );
    // Round-robin over the backends so each node appears before the list is cut at 20.
    const out: string[] = [];
    for (let index = 0; out.length < MAX_DELEGATES; index++) {
      const row = lists.map((list) => list[index]).filter((item) => item !== undefined);
      if (row.length === 0) break;
      for (const address of row)
        if (out.length < MAX_DELEGATES && !out.includes(address)) out.push(address);
    }
    return out;
  };

  return {
    async get() {
      const at = params.now();
      if (cached && at - cached.at < REFRESH_MS) return cached.list;
      asking ??= ask().finally(() => {
        asking = undefined;
      });
      const list = await asking;
      cached = { at, list };
      return list;
    },
  };
}
