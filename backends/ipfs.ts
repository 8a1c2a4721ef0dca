import * as dagCbor from "@ipld/dag-cbor";
import * as dagJson from "@ipld/dag-json";
import { varint } from "multiformats";
import { CID } from "multiformats/cid";
import type { AddResult, Backend, PinListing, PinOptions } from "./backend.js";
import type { SplitConnectionString } from "./connection-string.js";
import {
  backendId,
  booleanParam,
  maskConnectionString,
  parseHttpEndpoint,
} from "./connection-string.js";
import {
  BackendRequestError,
  ContentUnavailableError,
  InvalidConnectionStringError,
  InvalidDagValueError,
} from "./errors.js";
import {
  createRpcTransport,
  isRecord,
  ndjson,
  type RpcArgs,
  RpcDaemonError,
  readJson,
} from "./kubo-rpc.js";

/**
 * `ipfs://host:port`, `ipfs+http://host:port`, `ipfs+https://host:port[/prefix]`: a Kubo RPC
 * node (or anything speaking its RPC, such as js-ipfs). `ipfs://` means plain HTTP; the port
 * defaults to 5001; a path prefix is kept in front of `/api/v0`. `?token=` is sent as
 * `Authorization: Bearer <token>`; user info (`user:password@`) as basic auth.
 */
export const KUBO_FORMS = [
  "ipfs://host:port",
  "ipfs+http://host:port",
  "ipfs+https://host:port[/prefix][?token=…][&exclusive=true]",
] as const;

/** Settings of one Kubo RPC backend. `authorization` is a secret. */
export type KuboBackendParams = {
  baseUrl: URL;
  authorization: string | undefined;
  id: string;
  label: string;
  /** The operator declares Quasar the node's only user (`?exclusive=true`): see Backend.exclusive. */
  exclusive?: boolean;
  /** How long hasBlock waits on daemons that ignore `offline=true` (js-ipfs) before answering false. */
  localCheckTimeoutMs?: number;
};

export function parseKuboConnectionString(
  raw: string,
  parts: SplitConnectionString,
  acceptedForms: readonly string[],
): KuboBackendParams {
  const transport = parts.transport ?? "http";
  if (transport !== "http" && transport !== "https") {
    throw new InvalidConnectionStringError(
      maskConnectionString(raw),
      `unknown transport "+${transport}" (ipfs takes +http or +https)`,
      acceptedForms,
    );
  }
  const endpoint = parseHttpEndpoint({
    raw,
    designator: "ipfs",
    transport,
    rest: parts.rest,
    defaultPort: 5001,
    allowedParams: [],
    optionParams: ["exclusive"],
    acceptedForms,
  });
  const exclusive = booleanParam(endpoint.params, "exclusive", (reason) => {
    throw new InvalidConnectionStringError(maskConnectionString(raw), reason, acceptedForms);
  });
  return {
    baseUrl: endpoint.baseUrl,
    authorization: endpoint.authorization,
    id: backendId("ipfs", endpoint.canonical),
    label: maskConnectionString(raw),
    exclusive: exclusive ?? false,
  };
}

/** Which RPC dialect the daemon speaks: pin names are `name` in Kubo and `metadata` in js-ipfs. */
type Dialect = "kubo" | "js-ipfs";

export function createKuboBackend(params: KuboBackendParams): Backend {
  const { label } = params;
  const localCheckTimeoutMs = params.localCheckTimeoutMs ?? 500;
  let rpc = createRpcTransport({
    baseUrl: params.baseUrl,
    authorization: params.authorization,
    label,
  });
  let dialect: Dialect | undefined;
  let storesNames = false;

  /** Maps a daemon's refusal onto the error tree; anything else is already typed by the transport. */
  function fail(operation: string, error: unknown, cid?: CID): never {
    if (error instanceof RpcDaemonError) {
      if (
        cid &&
        /not found|could not find|timed out|timeout|no link named/i.test(error.daemonMessage)
      ) {
        if (/no link named/i.test(error.daemonMessage)) {
          throw new BackendRequestError(label, operation, error.daemonMessage, { cause: error });
        }
        throw new ContentUnavailableError(label, cid.toString(), {
          cause: error,
          details: error.daemonMessage,
        });
      }
      throw new BackendRequestError(label, operation, error.daemonMessage, { cause: error });
    }
    throw error;
  }

  async function detectDialect(signal?: AbortSignal): Promise<Dialect> {
    if (dialect) return dialect;
    const version = await readJson(await rpc.call("version", { signal }));
    dialect = isRecord(version) && "ipfs-core" in version ? "js-ipfs" : "kubo";
    // js-ipfs keeps metadata on every pin; Kubo names pins from 0.26 on.
    storesNames =
      dialect === "js-ipfs" ||
      (isRecord(version) && typeof version.Version === "string" && kuboNamesPins(version.Version));
    return dialect;
  }

  function nameArgs(current: Dialect, name: string): RpcArgs {
    return current === "kubo" ? { name } : { metadata: JSON.stringify({ name }) };
  }

  async function pinAdd(cid: CID, options: PinOptions): Promise<void> {
    const current = await detectDialect(options.signal);
    const body = await rpc.call("pin/add", {
      args: {
        arg: cid.toString(),
        recursive: true,
        progress: true,
        ...nameArgs(current, options.name),
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

  function toListing(cidText: string, entry: Record<string, unknown>): PinListing {
    const cid = CID.parse(cidText).toV1();
    const name =
      typeof entry.Name === "string" && entry.Name !== ""
        ? entry.Name
        : isRecord(entry.Metadata) && typeof entry.Metadata.name === "string"
          ? entry.Metadata.name
          : undefined;
    return name === undefined ? { cid } : { cid, name };
  }

  async function* pinLs(
    args: RpcArgs,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<PinListing> {
    const current = await detectDialect(signal);
    const body = await rpc.call("pin/ls", {
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

  const backend: Backend = {
    id: params.id,
    designator: "ipfs",
    label,
    exclusive: params.exclusive ?? false,

    async open() {
      await detectDialect();
    },

    async close() {
      rpc.close();
      // A fresh agent so open() after close() works again.
      rpc = createRpcTransport({
        baseUrl: params.baseUrl,
        authorization: params.authorization,
        label,
      });
    },

    async ping(signal) {
      try {
        const timeout = AbortSignal.timeout(5_000);
        await readJson(
          await rpc.call("id", { signal: signal ? AbortSignal.any([signal, timeout]) : timeout }),
        );
        return true;
      } catch {
        return false;
      }
    },

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
          await rpc.call("pin/rm", {
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
      const recursive = await look("recursive");
      if (recursive || (await detectDialect(options.signal)) !== "kubo") return recursive;
      // Kubo turns a direct pin into Quasar's recursive one when Quasar pins the CID: the
      // other user's pin would then go with Quasar's unpin. A second look (about 0.1 ms of
      // daemon CPU, against 2 ms for the pin itself: bench/ownership-check.ts) finds it; a
      // `type=all` look would also walk every recursive pin's DAG for indirect ones.
      const direct = await look("direct");
      return direct ? { ...direct, direct: true } : undefined;
    },

    async storesPinNames(options) {
      await detectDialect(options.signal).catch((error: unknown) => fail("version", error));
      return storesNames;
    },

    async hasBlock(cid, options) {
      const current = await detectDialect(options.signal).catch((error: unknown) =>
        fail("hasBlock", error),
      );
      try {
        // Kubo answers at once with offline=true; js-ipfs ignores it and waits for the
        // network, so a short timeout bounds its local check (a local block answers in ms).
        const timeout = current === "kubo" ? "30s" : `${localCheckTimeoutMs}ms`;
        await readJson(
          await rpc.call("block/stat", {
            args: { arg: cid.toString(), offline: true, timeout },
            signal: options.signal,
          }),
        );
        return true;
      } catch (error) {
        if (
          error instanceof RpcDaemonError &&
          /not found|could not find|timed out|timeout|offline/i.test(error.daemonMessage)
        ) {
          return false;
        }
        return fail("hasBlock", error);
      }
    },

    async *exportCar(cid, options) {
      try {
        yield* await rpc.call("dag/export", {
          args: { arg: cid.toString() },
          signal: options.signal,
        });
      } catch (error) {
        fail("exportCar", error, cid);
      }
    },

    async importCar(car, options) {
      let roots: CID[] = [];
      const header = carHeaderReader();
      async function* watched(): AsyncGenerator<Uint8Array> {
        for await (const chunk of car) {
          header.push(chunk);
          yield chunk;
        }
      }
      try {
        // pin-roots=false: Kubo's dag/import pins without names, so roots are pinned below with ours.
        const body = await rpc.call("dag/import", {
          args: { "pin-roots": false },
          body: watched(),
          signal: options.signal,
        });
        for await (const _ of ndjson(body, (message) => new RpcDaemonError(500, message))) {
          // drained for its errors
        }
        roots = header.roots();
      } catch (error) {
        fail("importCar", error);
      }
      for (const root of roots) await backend.pin(root, options);
    },

    async addFile(content, options) {
      const current = await detectDialect(options.signal).catch((error: unknown) =>
        fail("addFile", error),
      );
      const pinNow = options.pin !== false;
      let size = 0;
      async function* counted(): AsyncGenerator<Uint8Array> {
        for await (const chunk of content) {
          size += chunk.byteLength;
          yield chunk;
        }
      }
      // A failure of `content` itself reaches the caller unchanged (the transport passes it through).
      let cid: CID | undefined;
      try {
        const body = await rpc.call("add", {
          args: {
            "cid-version": 1,
            "raw-leaves": true,
            "cid-base": "base32",
            progress: false,
            // js-ipfs cannot name a pin on add: add unpinned, then pin with the name.
            pin: pinNow && current === "kubo",
            ...(pinNow && current === "kubo" ? { "pin-name": options.name } : {}),
          },
          body: counted(),
          signal: options.signal,
        });
        for await (const line of ndjson(body, (message) => new RpcDaemonError(500, message))) {
          if (isRecord(line) && typeof line.Hash === "string") cid = CID.parse(line.Hash).toV1();
        }
      } catch (error) {
        fail("addFile", error);
      }
      if (!cid) throw new BackendRequestError(label, "addFile", "the daemon's answer named no CID");
      if (pinNow && current !== "kubo") await backend.pin(cid, options);
      return { cid, size } satisfies AddResult;
    },

    async putDag(value, options) {
      let json: string;
      try {
        json = new TextDecoder().decode(dagJson.encode(toIpld(value)));
      } catch (error) {
        throw new InvalidDagValueError("cannot encode the value as IPLD", {
          cause: error,
          details: error instanceof Error ? error.message : String(error),
        });
      }
      let cid: CID | undefined;
      try {
        const body = await rpc.call("dag/put", {
          args: {
            "store-codec": options.codec ?? "dag-cbor",
            "input-codec": "dag-json",
            pin: false,
            "cid-base": "base32",
          },
          body: (async function* () {
            yield new TextEncoder().encode(json);
          })(),
          signal: options.signal,
        });
        const answer = await readJson(body);
        if (isRecord(answer) && isRecord(answer.Cid) && typeof answer.Cid["/"] === "string") {
          cid = CID.parse(answer.Cid["/"]);
        }
      } catch (error) {
        fail("putDag", error);
      }
      if (!cid) throw new BackendRequestError(label, "putDag", "the daemon's answer named no CID");
      // dag/put cannot name its pin: pin separately (the block is local, so this is quick).
      if (options.pin !== false) await backend.pin(cid, options);
      return cid;
    },

    async getDag(cid, options) {
      const path = (options.path ?? "").replace(/^\/+/, "");
      try {
        const body = await rpc.call("dag/get", {
          args: {
            arg: path ? `${cid.toString()}/${path}` : cid.toString(),
            "output-codec": "dag-json",
          },
          signal: options.signal,
        });
        const chunks: Uint8Array[] = [];
        for await (const chunk of body) chunks.push(chunk);
        const bytes = Buffer.concat(chunks);
        // js-ipfs answers a string node as bare text, not as JSON; Kubo labels its dag-json
        // answers text/plain too, so only the dialect tells them apart.
        if (dialect === "js-ipfs" && body.contentType.startsWith("text/"))
          return { value: bytes.toString("utf8"), remainderPath: "" };
        return { value: dagJson.decode(bytes), remainderPath: "" };
      } catch (error) {
        return fail("getDag", error, cid);
      }
    },

    async *cat(cid, options) {
      try {
        yield* await rpc.call("cat", {
          args: { arg: cid.toString(), offset: options.offset, length: options.length },
          signal: options.signal,
        });
      } catch (error) {
        fail("cat", error, cid);
      }
    },
  };
  return backend;
}

/** JSON values as Kubo's dag-json input reads them; CIDs and bytes survive through their JSON form. */
function toIpld(value: unknown): unknown {
  if (value === undefined) throw new TypeError("undefined is not a JSON value");
  return dagJson.decode(
    dagJson.encode(
      JSON.parse(
        JSON.stringify(value, (_key, item: unknown) =>
          item instanceof Uint8Array
            ? { "/": { bytes: Buffer.from(item).toString("base64").replace(/=+$/, "") } }
            : item,
        ),
      ) as unknown,
    ),
  );
}

/** Collects a CARv1 header from the first chunks of a stream, to learn its roots. */
function carHeaderReader() {
  const chunks: Uint8Array[] = [];
  let length = 0;
  let decoded: CID[] | undefined;
  return {
    push(chunk: Uint8Array) {
      if (decoded) return;
      chunks.push(chunk);
      length += chunk.byteLength;
      const bytes = Buffer.concat(chunks, length);
      if (bytes.byteLength < 1) return;
      let headerLength: number;
      let offset: number;
      try {
        [headerLength, offset] = varint.decode(bytes);
      } catch {
        return; // the varint is not complete yet
      }
      if (bytes.byteLength < offset + headerLength) return;
      const header: unknown = dagCbor.decode(bytes.subarray(offset, offset + headerLength));
      const roots = isRecord(header) && Array.isArray(header.roots) ? header.roots : [];
      decoded = roots.map((root) => CID.asCID(root)).filter((root): root is CID => root !== null);
      chunks.length = 0;
    },
    roots(): CID[] {
      return decoded ?? [];
    },
  };
}

/** Kubo stores pin names from 0.26.0 on; a version it cannot read counts as older. */
export function kuboNamesPins(version: string): boolean {
  const match = /^(\d+)\.(\d+)\./.exec(version);
  if (!match) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 0 || minor >= 26;
}
