import type { CID } from "multiformats/cid";
import { BackendRequestError, ContentUnavailableError } from "../errors.js";
import type { BackendLifecycle } from "../lifecycle.js";
import type { KuboBackendParams } from "./connection-string.js";
import {
  createRpcTransport,
  isRecord,
  type RpcArgs,
  RpcDaemonError,
  type RpcStream,
  readJson,
} from "./rpc.js";

/** Which RPC dialect the daemon speaks: pin names are `name` in Kubo and `metadata` in js-ipfs. */
export type Dialect = "kubo" | "js-ipfs";

/**
 * One Kubo RPC daemon as both roles see it: the HTTP transport, the dialect read once from
 * `/version`, the mapping of the daemon's refusals onto the error tree, and the lifecycle.
 */
export type KuboClient = {
  readonly lifecycle: BackendLifecycle;
  readonly params: KuboBackendParams;
  /** POSTs `/api/v0/<command>` on the current transport (see rpc.ts for what it throws). */
  call(
    command: string,
    options: { args?: RpcArgs; body?: AsyncIterable<Uint8Array>; signal?: AbortSignal },
  ): Promise<RpcStream>;
  /** Asks `/version` once per client; later calls answer from memory. */
  dialect(signal?: AbortSignal): Promise<Dialect>;
  /** Whether the daemon keeps pin names (known after dialect()). */
  storesNames(): boolean;
  /** The arguments that name a pin in this dialect. */
  nameArgs(dialect: Dialect, name: string): RpcArgs;
  /** Maps a daemon's refusal onto the error tree; anything else is already typed by the transport. */
  fail(operation: string, error: unknown, cid?: CID): never;
};

/** Kubo's messages for a path that does not exist inside a DAG (`dag get CID/path`). */
const DAG_PATH_ERROR =
  /no link named|key not found|invalid segment for lookup|called on a \w+ node/i;

export function createKuboClient(params: KuboBackendParams): KuboClient {
  const { label } = params;
  const transport = () =>
    createRpcTransport({ baseUrl: params.baseUrl, authorization: params.authorization, label });
  let rpc = transport();
  let dialect: Dialect | undefined;
  let storesNames = false;

  function fail(operation: string, error: unknown, cid?: CID): never {
    if (error instanceof RpcDaemonError) {
      // A path that does not exist inside a DAG is the request's fault, not missing content.
      if (DAG_PATH_ERROR.test(error.daemonMessage)) {
        throw new BackendRequestError(label, operation, error.daemonMessage, { cause: error });
      }
      if (cid && /not found|could not find|timed out|timeout/i.test(error.daemonMessage)) {
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

  const lifecycle: BackendLifecycle = {
    id: params.id,
    designator: "ipfs",
    label,
    async open() {
      await detectDialect();
    },
    async close() {
      rpc.close();
      // A fresh agent so open() after close() works again.
      rpc = transport();
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
  };

  return {
    lifecycle,
    params,
    call: (command, options) => rpc.call(command, options),
    dialect: detectDialect,
    storesNames: () => storesNames,
    nameArgs: (current, name) =>
      current === "kubo" ? { name } : { metadata: JSON.stringify({ name }) },
    fail,
  };
}

/** Kubo stores pin names from 0.26.0 on; a version it cannot read counts as older. */
export function kuboNamesPins(version: string): boolean {
  const match = /^(\d+)\.(\d+)\./.exec(version);
  if (!match) return false;
  const [major, minor] = [Number(match[1]), Number(match[2])];
  return major > 0 || minor >= 26;
}
