import { CID } from "multiformats/cid";
import {
  BackendAbortedError,
  BackendRequestError,
  BackendStreamError,
  ContentUnavailableError,
} from "../errors.js";
import type { BackendLifecycle } from "../lifecycle.js";
import type { PinBackend, PinListing } from "../pin-backend.js";
import { type PsaClient, type RemotePinStatus, wait } from "./client.js";
import { PSA_OWNER_META } from "./connection-string.js";

/**
 * The pin role over a Pinning Service API provider. A pin is a request (`POST /pins`) whose
 * `meta` carries `quasar-owner: <owner>`; its status is polled with backoff until pinned or
 * failed. Quasar deletes only requests carrying its mark: every other request on the account
 * (made by the user, another tool, another Quasar with another owner) is foreign and is only
 * ever listed. A pin attempt cut short (the engine's inactivity timeout) leaves the request
 * at the provider, and the next attempt finds it by its mark and waits for it again.
 */

const ALL_STATUSES = "queued,pinning,pinned,failed";
/** First pause between status polls, growing by half each time up to the maximum. */
const POLL_FIRST_MS = 250;
const POLL_MAX_MS = 5_000;
/** The largest page the spec allows. */
const PAGE = 1000;

export function createPsaPins(client: PsaClient, lifecycle: BackendLifecycle): PinBackend {
  const { label, owner } = client.params;
  const mark = { [PSA_OWNER_META]: owner };
  const isOurs = (status: RemotePinStatus) => status.pin.meta?.[PSA_OWNER_META] === owner;

  /** This Quasar's requests for `cid` in the given statuses. */
  async function ownRequests(cid: CID, statuses: string, signal?: AbortSignal) {
    const { body } = await client.call("list", "GET", "/pins", {
      query: {
        cid: cid.toString(),
        status: statuses,
        meta: JSON.stringify(mark),
        limit: String(PAGE),
      },
      ...(signal ? { signal } : {}),
    });
    // Filter again: a provider that ignores `meta` must not make us take others' requests.
    return client.page("list", body).results.filter(isOurs);
  }

  async function remove(requestid: string, signal?: AbortSignal) {
    const { status } = await client.call(
      "unpin",
      "DELETE",
      `/pins/${encodeURIComponent(requestid)}`,
      {
        ...(signal ? { signal } : {}),
      },
    );
    // 404: already gone (deleted by someone, or never kept): the request is not there either way.
    if (status !== 202 && status !== 200 && status !== 204 && status !== 404) {
      throw new BackendRequestError(label, "unpin", `DELETE answered HTTP ${status}`);
    }
  }

  async function* pages(signal?: AbortSignal): AsyncGenerator<RemotePinStatus> {
    let before: string | undefined;
    for (;;) {
      const { body } = await client.call("listPins", "GET", "/pins", {
        query: { status: "pinned", limit: String(PAGE), ...(before ? { before } : {}) },
        ...(signal ? { signal } : {}),
      });
      const page = client.page("listPins", body);
      if (page.results.length === 0) {
        if (page.count > 0) {
          throw new BackendStreamError(label, "listPins", {
            details: `the provider counts ${page.count} more pins but sent none`,
          });
        }
        return;
      }
      yield* page.results;
      if (page.count <= page.results.length) return;
      const oldest = page.results[page.results.length - 1]?.created ?? "";
      if (oldest === "" || oldest === before) {
        throw new BackendStreamError(label, "listPins", {
          details: "the provider's `created` does not page (missing or repeated)",
        });
      }
      before = oldest;
    }
  }

  const listing = (status: RemotePinStatus): PinListing => {
    const cid = CID.parse(status.pin.cid).toV1();
    return status.pin.name === undefined ? { cid } : { cid, name: status.pin.name };
  };

  return {
    ...lifecycle,
    exclusive: false,

    async pin(cid, options) {
      const { signal } = options;
      const own = await ownRequests(cid, ALL_STATUSES, signal);
      if (own.some((request) => request.status === "pinned")) return;
      // A failed request of ours is retired: this attempt asks again.
      for (const request of own)
        if (request.status === "failed") await remove(request.requestid, signal);
      let current = own.find(
        (request) => request.status === "queued" || request.status === "pinning",
      );
      if (!current) {
        const { status, body } = await client.call("pin", "POST", "/pins", {
          body: { cid: cid.toString(), name: options.name, meta: mark },
          ...(signal ? { signal } : {}),
        });
        if (status === 404)
          throw new BackendRequestError(
            label,
            "pin",
            "POST /pins answered 404: is the URL the API root (without /pins)?",
          );
        current = client.pinStatus("pin", body);
      }
      let pause = POLL_FIRST_MS;
      let progress = 0;
      let last = current.status;
      for (;;) {
        if (current.status === "pinned") return;
        if (current.status === "failed") {
          throw new ContentUnavailableError(label, cid.toString(), {
            details: current.info?.status_details ?? "the provider reports the pin failed",
          });
        }
        if (current.status !== last) {
          last = current.status;
          options.onProgress?.(++progress);
        }
        try {
          await wait(pause, signal ?? new AbortController().signal);
        } catch (error) {
          throw new BackendAbortedError(label, "pin", { cause: error });
        }
        pause = Math.min(Math.round(pause * 1.5), POLL_MAX_MS);
        const { status, body } = await client.call(
          "pin",
          "GET",
          `/pins/${encodeURIComponent(current.requestid)}`,
          {
            ...(signal ? { signal } : {}),
          },
        );
        if (status === 404) {
          throw new BackendRequestError(
            label,
            "pin",
            `the provider lost request ${current.requestid} (404)`,
          );
        }
        current = client.pinStatus("pin", body);
      }
    },

    async unpin(cid, options) {
      for (const request of await ownRequests(cid, ALL_STATUSES, options.signal)) {
        await remove(request.requestid, options.signal);
      }
    },

    async *listPins(options) {
      for await (const status of pages(options.signal)) {
        if (status.status === "pinned") yield listing(status);
      }
    },

    async getPin(cid, options) {
      const { body } = await client.call("getPin", "GET", "/pins", {
        query: { cid: cid.toString(), status: "pinned", limit: String(PAGE) },
        ...(options.signal ? { signal: options.signal } : {}),
      });
      // Filter again: a provider that ignores `status` (IPFS Cluster 1.1 answers a queued
      // request to a status=pinned query) must not make a pin of what is not pinned.
      const results = client
        .page("getPin", body)
        .results.filter((status) => status.status === "pinned");
      // Ours first: the engine reads the name to decide whether the pin is still Quasar's.
      const chosen = results.find(isOurs) ?? results[0];
      return chosen ? listing(chosen) : undefined;
    },

    async storesPinNames() {
      // Each request keeps its own name, and getPin answers Quasar's own request first.
      return true;
    },
  };
}
