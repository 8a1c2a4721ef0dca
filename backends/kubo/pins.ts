import { CID } from "multiformats/cid";
import { listedCidKey } from "../cid-key.js";
import { BackendRequestError } from "../errors.js";
import type { PinBackend, PinListing, PinOptions } from "../pin-backend.js";
import type { KuboClient } from "./client.js";
import { isRecord, ndjson, type RpcArgs, RpcDaemonError, readJson } from "./rpc.js";

/** The pin role of a Kubo RPC daemon: `pin/add`, `pin/rm`, `pin/ls` (recursive pins only). */
export function createKuboPins(client: KuboClient): PinBackend {
  const { label } = client.lifecycle;
  const { fail } = client;

  async function pinAdd(cid: CID, options: PinOptions): Promise<void> {
    const current = await client.dialect(options.signal);
    const body = await client.call("pin/add", {
      args: {
        arg: cid.toString(),
        recursive: true,
        progress: true,
        ...client.nameArgs(current, options.name),
      },
      signal: options.signal,
    });
    let pinned = false;
    let blocks = 0;
    for await (const line of ndjson(body, (message) => new RpcDaemonError(500, message))) {
      if (!isRecord(line)) continue;
      // Kubo repeats the count on its last line; the contract reports growth only.
      if (typeof line.Progress === "number" && line.Progress > blocks) {
        blocks = line.Progress;
        options.onProgress?.(blocks);
      }
      if (Array.isArray(line.Pins)) pinned = true;
    }
    if (!pinned) throw new BackendRequestError(label, "pin", "the daemon's answer listed no pin");
  }

  async function* pinLs(
    args: RpcArgs,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<PinListing> {
    const current = await client.dialect(signal);
    const body = await client.call("pin/ls", {
      args: {
        type: "recursive",
        stream: true,
        ...(current === "kubo" ? { names: true } : {}),
        ...args,
      },
      signal,
    });
    for await (const line of ndjson(body, (message) => new RpcDaemonError(500, message))) {
      if (!isRecord(line)) continue;
      if (typeof line.Cid === "string") yield toListing(line.Cid, line);
      else if (isRecord(line.Keys)) {
        // a non-streaming answer: {"Keys": {cid: {Type, Name}}}
        for (const [cidText, entry] of Object.entries(line.Keys)) {
          if (isRecord(entry)) yield toListing(cidText, entry);
        }
      }
    }
  }

  return {
    ...client.lifecycle,
    exclusive: client.params.exclusive ?? false,

    async pin(cid, options) {
      try {
        await pinAdd(cid, options);
      } catch (error) {
        fail("pin", error, cid);
      }
    },

    async unpin(cid, options) {
      try {
        await readJson(
          await client.call("pin/rm", {
            args: { arg: cid.toString(), recursive: true },
            signal: options.signal,
          }),
        );
      } catch (error) {
        if (error instanceof RpcDaemonError && /not pinned/i.test(error.daemonMessage)) return;
        fail("unpin", error);
      }
    },

    async *listPins(options) {
      try {
        yield* pinLs({}, options.signal);
      } catch (error) {
        fail("listPins", error);
      }
    },

    async getPin(cid, options) {
      const look = async (type: "recursive" | "direct") => {
        try {
          for await (const listing of pinLs({ arg: cid.toString(), type }, options.signal))
            return listing;
          return undefined;
        } catch (error) {
          if (error instanceof RpcDaemonError && /not pinned/i.test(error.daemonMessage))
            return undefined;
          return fail("getPin", error);
        }
      };
      // Kubo turns a direct pin into Quasar's recursive one when Quasar pins the CID: the
      // other user's pin would then go with Quasar's unpin. A second look (about 0.1 ms of
      // daemon CPU, against 2 ms for the pin itself: bench/ownership-check.ts) finds it; a
      // `type=all` look would also walk every recursive pin's DAG for indirect ones. Both
      // looks go out at once: the common answer (not pinned) needs both, and a caller waits
      // one round trip instead of two.
      const kubo = (await client.dialect(options.signal)) === "kubo";
      const [recursive, direct] = await Promise.all([
        look("recursive"),
        kubo ? look("direct") : undefined,
      ]);
      if (recursive) return recursive;
      return direct ? { ...direct, direct: true } : undefined;
    },

    async storesPinNames(options) {
      await client.dialect(options.signal).catch((error: unknown) => fail("version", error));
      return client.storesNames();
    },

    async addresses(options) {
      let answer: unknown;
      try {
        answer = await readJson(await client.call("id", { signal: options.signal }));
      } catch (error) {
        return fail("id", error);
      }
      return p2pAddresses(answer);
    },

    async connect(addresses, options) {
      // One call per address: Kubo fails the whole call when one of several cannot be dialled.
      await Promise.allSettled(
        addresses.map(async (address) =>
          readJson(
            await client.call("swarm/connect", { args: { arg: address }, signal: options.signal }),
          ),
        ),
      );
    },
  };
}

function toListing(cidText: string, entry: Record<string, unknown>): PinListing {
  // Kubo spells CIDv1 pins in base32 already: a sweep of millions compares that text and
  // never needs the CID object, which is built (once) only when something reads it.
  const key = listedCidKey(cidText);
  const name =
    typeof entry.Name === "string" && entry.Name !== ""
      ? entry.Name
      : isRecord(entry.Metadata) && typeof entry.Metadata.name === "string"
        ? entry.Metadata.name
        : undefined;
  let cid: CID | undefined;
  const listing: PinListing = {
    key,
    get cid() {
      cid ??= CID.parse(key);
      return cid;
    },
  };
  if (name !== undefined) listing.name = name;
  return listing;
}

/**
 * The daemon's dialable addresses from its `id` answer, each ending in `/p2p/<peer id>`; the
 * bare `/p2p/<peer id>` when it lists none (an offline daemon).
 */
export function p2pAddresses(answer: unknown): string[] {
  if (!isRecord(answer) || typeof answer.ID !== "string" || answer.ID === "") return [];
  const id = answer.ID;
  const listed = Array.isArray(answer.Addresses) ? answer.Addresses : [];
  const out: string[] = [];
  for (const address of listed) {
    if (typeof address !== "string" || !address.startsWith("/")) continue;
    out.push(/\/p2p\/[^/]+$/.test(address) ? address : `${address}/p2p/${id}`);
  }
  return out.length > 0 ? out : [`/p2p/${id}`];
}
