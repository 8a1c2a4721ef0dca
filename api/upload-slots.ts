import { TooManyUploadsError } from "./errors.js";

/**
 * A cap on the uploads one client runs at once (QUASAR_MAX_UPLOADS_PER_CLIENT). The rate
 * limit counts requests over a window; it cannot stop twenty slow bodies opened in one
 * second from holding twenty connections and backend writers. This does: a slot is taken
 * when an upload starts and given back when its answer is ready, whatever the outcome.
 */
export type UploadSlots = {
  /** Takes a slot for `client` or throws TooManyUploadsError (429); call the returned release once. */
  acquire(client: string): () => void;
  /** Uploads running now for `client` (for tests and metrics). */
  inUse(client: string): number;
};

/** `limit` 0 disables the cap. */
export function createUploadSlots(limit: number): UploadSlots {
  const running = new Map<string, number>();
  return {
    acquire(client) {
      if (limit === 0) return () => {};
      const now = running.get(client) ?? 0;
      if (now >= limit) throw new TooManyUploadsError(limit);
      running.set(client, now + 1);
      let released = false;
      return () => {
        if (released) return;
        released = true;
        const left = (running.get(client) ?? 1) - 1;
        // Delete at zero: the map holds only clients with uploads in flight.
        if (left <= 0) running.delete(client);
        else running.set(client, left);
      };
    },
    inUse: (client) => running.get(client) ?? 0,
  };
}
