import { CID } from "multiformats/cid";
import { BackendAbortedError } from "../errors.js";
import { isRecord, ndjson } from "../kubo/rpc.js";
import type { RestTransport } from "./rest.js";

/**
 * Status looks of many CIDs in one request: every pin under way polls its status, and one
 * `GET /pins?cids=a,b,…` per round answers all of them (Cluster streams one GlobalPinInfo per
 * CID), instead of one request per pin per round. Looks asked within BATCH_WINDOW_MS share a
 * request.
 */
export type StatusBatcher = {
  /** The CID's GlobalPinInfo as Cluster answers it, or undefined when it answered none. */
  get(cid: CID, signal?: AbortSignal): Promise<unknown>;
};

const BATCH_WINDOW_MS = 5;
/** CIDs per request: keeps the query string far below Cluster's header limit. */
const BATCH_MAX = 200;

type Waiter = {
  key: string;
  resolve(value: unknown): void;
  reject(error: unknown): void;
};

export function createStatusBatcher(rest: () => RestTransport, label: string): StatusBatcher {
  let queue: Waiter[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;

  async function send(batch: Waiter[]): Promise<void> {
    const byKey = new Map<string, Waiter[]>();
    for (const waiter of batch) {
      const list = byKey.get(waiter.key);
      if (list) list.push(waiter);
      else byKey.set(waiter.key, [waiter]);
    }
    const answers = new Map<string, unknown>();
    let failure: unknown;
    try {
      const query = new URLSearchParams({ cids: [...byKey.keys()].join(",") });
      const body = await rest().request("GET", "/pins", { query });
      for await (const line of ndjson(body, (message) => new Error(message))) {
        if (!isRecord(line) || typeof line.cid !== "string") continue;
        answers.set(CID.parse(line.cid).toV1().toString(), line);
      }
    } catch (error) {
      failure = error;
    }
    // Cluster asks each CID's status on its own and leaves out the ones that failed (a busy
    // Kubo), naming the failures only in the stream's error trailer. A CID left out of a
    // failed stream is unknown, not absent: its look fails instead of saying "not pinned".
    for (const [key, waiters] of byKey) {
      const answer = answers.get(key);
      for (const w of waiters) {
        if (answer === undefined && failure !== undefined) w.reject(failure);
        else w.resolve(answer);
      }
    }
  }

  function flush(): void {
    timer = undefined;
    while (queue.length > 0) {
      const batch = queue.slice(0, BATCH_MAX);
      queue = queue.slice(BATCH_MAX);
      void send(batch);
    }
  }

  return {
    get(cid, signal) {
      if (signal?.aborted) {
        return Promise.reject(
          new BackendAbortedError(label, "GET /pins", { cause: signal.reason }),
        );
      }
      return new Promise((resolve, reject) => {
        const onAbort = () =>
          reject(new BackendAbortedError(label, "GET /pins", { cause: signal?.reason }));
        signal?.addEventListener("abort", onAbort, { once: true });
        queue.push({
          key: cid.toV1().toString(),
          resolve: (value) => {
            signal?.removeEventListener("abort", onAbort);
            resolve(value);
          },
          reject: (error) => {
            signal?.removeEventListener("abort", onAbort);
            reject(error);
          },
        });
        if (queue.length >= BATCH_MAX) {
          clearTimeout(timer);
          flush();
        } else timer ??= setTimeout(flush, BATCH_WINDOW_MS);
      });
    },
  };
}
