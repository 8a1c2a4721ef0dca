import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import * as dagCbor from "@ipld/dag-cbor";
import * as dagJson from "@ipld/dag-json";
import { FsBlockstore } from "blockstore-fs";
import { FsDatastore } from "datastore-fs";
import { createHelia, createHeliaLight, type Helia } from "helia";
import type { CID } from "multiformats/cid";
import * as json from "multiformats/codecs/json";
import {
  BackendAbortedError,
  BackendRequestError,
  BackendUnavailableError,
  ContentUnavailableError,
} from "../errors.js";
import type { BackendLifecycle } from "../lifecycle.js";
import type { HeliaBackendParams } from "./connection-string.js";
import { DagPathError } from "./dag-path.js";
import { UnixfsReadError } from "./unixfs-read.js";

/**
 * One embedded helia node, shared by the pin and content roles: it starts on first use (or
 * open()), and every role maps helia's errors onto the backend error tree the same way.
 */
export type HeliaNode = {
  readonly lifecycle: BackendLifecycle;
  /** The started node; starts it when needed (BackendUnavailableError when it cannot). */
  ready(): Promise<Helia>;
  /** Maps a helia error onto the error tree; `cid` turns a missing block into ContentUnavailableError. */
  fail(operation: string, error: unknown, cid?: CID, signal?: AbortSignal): never;
};

export function createHeliaNode(params: HeliaBackendParams): HeliaNode {
  const { label } = params;
  let node: Helia | undefined;
  let opening: Promise<Helia> | undefined;

  async function start(): Promise<Helia> {
    await mkdir(params.directory, { recursive: true });
    const blockstore = new FsBlockstore(join(params.directory, "blocks"));
    const datastore = new FsDatastore(join(params.directory, "data"));
    await blockstore.open();
    await datastore.open();
    try {
      const helia: Helia = params.offline
        ? // createHelia adds these codecs itself; the light node knows only dag-pb and raw.
          createHeliaLight({ blockstore, datastore, codecs: [dagCbor, dagJson, json] })
        : createHelia({ blockstore, datastore });
      await helia.start();
      return helia;
    } catch (error) {
      await Promise.allSettled([blockstore.close(), datastore.close()]);
      throw error;
    }
  }

  /**
   * Two processes (the API and the reconciler) may open one fresh directory at the same
   * moment; libp2p then writes its first keys twice and the loser fails with "Key … already
   * exists". The keys are there by then, so a second start simply loads them.
   */
  async function startTolerant(): Promise<Helia> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await start();
      } catch (error) {
        if (attempt >= 3 || !/already exists/i.test(messageOf(error))) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  }

  async function ready(): Promise<Helia> {
    if (node) return node;
    if (!opening) {
      opening = startTolerant().then(
        (started) => {
          node = started;
          return started;
        },
        (error: unknown) => {
          opening = undefined;
          throw new BackendUnavailableError(label, { cause: error, details: messageOf(error) });
        },
      );
    }
    return opening;
  }

  function fail(operation: string, error: unknown, cid?: CID, signal?: AbortSignal): never {
    if (signal?.aborted || nameOf(error) === "AbortError") {
      throw new BackendAbortedError(label, operation, { cause: error });
    }
    const name = nameOf(error);
    if (
      cid &&
      (name === "InvalidConfigurationError" ||
        name === "BlockNotFoundWhileOfflineError" ||
        name === "LoadBlockFailedError" ||
        name === "NotFoundError")
    ) {
      throw new ContentUnavailableError(label, cid.toString(), {
        cause: error,
        details: messageOf(error),
      });
    }
    if (error instanceof UnixfsReadError || error instanceof DagPathError) {
      throw new BackendRequestError(label, operation, error.message, { cause: error });
    }
    if (error instanceof Error && /ENOSPC|EACCES|EROFS|EMFILE/.test(error.message)) {
      throw new BackendUnavailableError(label, { cause: error, details: messageOf(error) });
    }
    throw new BackendRequestError(label, operation, messageOf(error), { cause: error });
  }

  const lifecycle: BackendLifecycle = {
    id: params.id,
    designator: "helia",
    label,
    async open() {
      await ready();
    },
    async close() {
      const current = node ?? (opening ? await opening.catch(() => undefined) : undefined);
      node = undefined;
      opening = undefined;
      await current?.stop();
    },
    async ping() {
      return node !== undefined && node.status === "started";
    },
  };

  return { lifecycle, ready, fail };
}

export function nameOf(error: unknown): string | undefined {
  return error instanceof Error ? error.name : undefined;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}
