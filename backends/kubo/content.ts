import * as dagJson from "@ipld/dag-json";
import { equals } from "multiformats/bytes";
import { CID } from "multiformats/cid";
import { KUBO_ADD_DEFAULTS, kuboAddArgs } from "../add-options.js";
import type { AddResult, ContentBackend } from "../content-backend.js";
import { BackendRequestError, InvalidDagValueError } from "../errors.js";
import { toIpld } from "../ipld-json.js";
import type { PinBackend } from "../pin-backend.js";
import { carHeaderReader } from "./car-header.js";
import type { KuboClient } from "./client.js";
import { isRecord, ndjson, RpcDaemonError, readJson } from "./rpc.js";

/**
 * The content role of a Kubo RPC daemon: `add`, `dag/put|get|export|import`, `cat`,
 * `block/stat|get`. What it stores it pins through `pins` (the same daemon's pin role) whenever
 * the daemon cannot name the pin in the same call.
 */
export function createKuboContent(client: KuboClient, pins: PinBackend): ContentBackend {
  const { label } = client.lifecycle;
  const { fail } = client;
  const localCheckTimeoutMs = client.params.localCheckTimeoutMs ?? 500;

  return {
    ...client.lifecycle,

    async hasBlock(cid, options) {
      const current = await client
        .dialect(options.signal)
        .catch((error: unknown) => fail("hasBlock", error));
      try {
        // Kubo answers at once with offline=true; js-ipfs ignores it and waits for the
        // network, so a short timeout bounds its local check (a local block answers in ms).
        const timeout = current === "kubo" ? "30s" : `${localCheckTimeoutMs}ms`;
        await readJson(
          await client.call("block/stat", {
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
        yield* await client.call("dag/export", {
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
        const body = await client.call("dag/import", {
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
      for (const root of roots) await pins.pin(root, options);
    },

    async addFile(content, options) {
      const current = await client
        .dialect(options.signal)
        .catch((error: unknown) => fail("addFile", error));
      const pinNow = options.pin !== false;
      let size = 0;
      async function* counted(): AsyncGenerator<Uint8Array> {
        for await (const chunk of content) {
          size += chunk.byteLength;
          yield chunk;
        }
      }
      // A failure of `content` itself reaches the caller unchanged (the transport passes it through).
      const unixfsOptions = options.unixfs ?? KUBO_ADD_DEFAULTS;
      const pinHere = pinNow && !unixfsOptions.onlyHash;
      let cid: CID | undefined;
      let dagSize = 0;
      try {
        const body = await client.call("add", {
          args: {
            ...kuboAddArgs(unixfsOptions),
            progress: false,
            // js-ipfs cannot name a pin on add: add unpinned, then pin with the name.
            pin: pinHere && current === "kubo",
            ...(pinHere && current === "kubo" ? { "pin-name": options.name } : {}),
          },
          body: counted(),
          signal: options.signal,
        });
        for await (const line of ndjson(body, (message) => new RpcDaemonError(500, message))) {
          if (isRecord(line) && typeof line.Hash === "string") {
            // The CID as the daemon built it (CIDv0 for Kubo's defaults).
            cid = CID.parse(line.Hash);
            dagSize = typeof line.Size === "string" ? Number(line.Size) : 0;
          }
        }
      } catch (error) {
        fail("addFile", error);
      }
      if (!cid) throw new BackendRequestError(label, "addFile", "the daemon's answer named no CID");
      if (pinHere && current !== "kubo") await pins.pin(cid, options);
      return { cid, size, dagSize } satisfies AddResult;
    },

    async putBlock(cid, bytes, options) {
      let key: CID | undefined;
      try {
        const body = await client.call("block/put", {
          args: { "cid-codec": codecName(cid.code), mhtype: "sha2-256", pin: false },
          body: (async function* () {
            yield bytes;
          })(),
          signal: options.signal,
        });
        const answer = await readJson(body);
        if (isRecord(answer) && typeof answer.Key === "string") key = CID.parse(answer.Key);
      } catch (error) {
        fail("putBlock", error);
      }
      // Blocks are keyed by multihash: the daemon's CID spelling may differ, its hash may not.
      if (!key || !equals(key.multihash.bytes, cid.multihash.bytes)) {
        throw new BackendRequestError(
          label,
          "putBlock",
          `the daemon stored the block as ${key?.toString() ?? "nothing"}, expected ${cid.toString()}`,
        );
      }
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
        const body = await client.call("dag/put", {
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
      if (options.pin !== false) await pins.pin(cid, options);
      return cid;
    },

    async getDag(cid, options) {
      const path = (options.path ?? "").replace(/^\/+/, "");
      try {
        const body = await client.call("dag/get", {
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
        const dialect = await client.dialect(options.signal);
        if (dialect === "js-ipfs" && body.contentType.startsWith("text/"))
          return { value: bytes.toString("utf8"), remainderPath: "" };
        return { value: dagJson.decode(bytes), remainderPath: "" };
      } catch (error) {
        return fail("getDag", error, cid);
      }
    },

    async getBlock(cid, options) {
      try {
        // offline: a block the daemon lacks is an error at once, never a network fetch.
        const body = await client.call("block/get", {
          args: { arg: cid.toString(), offline: true },
          signal: options.signal,
        });
        const chunks: Uint8Array[] = [];
        for await (const chunk of body) chunks.push(chunk);
        return new Uint8Array(Buffer.concat(chunks));
      } catch (error) {
        return fail("getBlock", error, cid);
      }
    },

    async *cat(cid, options) {
      try {
        yield* await client.call("cat", {
          args: { arg: cid.toString(), offset: options.offset, length: options.length },
          signal: options.signal,
        });
      } catch (error) {
        fail("cat", error, cid);
      }
    },
  };
}

function codecName(code: number): string {
  if (code === 0x70) return "dag-pb";
  if (code === 0x55) return "raw";
  if (code === 0x71) return "dag-cbor";
  if (code === 0x0129) return "dag-json";
  throw new TypeError(`no codec name for 0x${code.toString(16)}`);
}
