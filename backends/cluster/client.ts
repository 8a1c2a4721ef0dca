import type { CID } from "multiformats/cid";
import {
  BackendAbortedError,
  BackendRequestError,
  BackendUnavailableError,
  ContentUnavailableError,
  isBackendError,
} from "../errors.js";
import type { BackendLifecycle } from "../lifecycle.js";
import type { ClusterBackendParams } from "./connection-string.js";
import { ClusterRefusal, createRestTransport, type RestTransport, readJson } from "./rest.js";

/**
 * One IPFS Cluster peer's REST API as the pin role sees it: the transport, the lifecycle
 * (`GET /id`), and the mapping of the peer's refusals onto the error tree.
 */
export type ClusterClient = {
  readonly lifecycle: BackendLifecycle;
  readonly params: ClusterBackendParams;
  readonly rest: RestTransport;
  /** True for the refusal Cluster answers when a CID is not in its pinset. */
  isNotPinned(error: unknown): boolean;
  /** Maps anything a call threw onto the backend error tree, then throws it. */
  fail(operation: string, error: unknown, cid?: CID): never;
};

export function createClusterClient(params: ClusterBackendParams): ClusterClient {
  const { label } = params;
  const transport = () =>
    createRestTransport({ baseUrl: params.baseUrl, authorization: params.authorization, label });
  let rest = transport();

  function fail(operation: string, error: unknown, cid?: CID): never {
    if (isBackendError(error)) throw error;
    if (error instanceof ClusterRefusal) {
      if (error.status === 401 || error.status === 403) {
        throw new BackendRequestError(label, operation, `HTTP ${error.status}: ${error.message}`, {
          cause: error,
        });
      }
      // Too few peers up for the replication factors: may pass when they return.
      if (/not enough peers to allocate/i.test(error.clusterMessage)) {
        throw new BackendUnavailableError(label, {
          cause: error,
          details: `${operation}: ${error.clusterMessage}`,
        });
      }
      if (cid && /not found|timed out|timeout|context deadline/i.test(error.clusterMessage)) {
        throw new ContentUnavailableError(label, cid.toString(), {
          cause: error,
          details: error.clusterMessage,
        });
      }
      throw new BackendRequestError(label, operation, error.clusterMessage, { cause: error });
    }
    // The caller's signal fired between two calls (a wait between status looks).
    if (error instanceof DOMException || (error instanceof Error && error.name === "AbortError")) {
      throw new BackendAbortedError(label, operation, { cause: error });
    }
    throw new BackendRequestError(
      label,
      operation,
      `unreadable answer: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }

  const lifecycle: BackendLifecycle = {
    id: params.id,
    designator: "cluster",
    label,
    async open() {
      try {
        await readJson(await rest.request("GET", "/id", { signal: AbortSignal.timeout(10_000) }));
      } catch (error) {
        if (error instanceof ClusterRefusal) {
          // Wrong credentials do not get better by waiting.
          if (error.status === 401 || error.status === 403) fail("open", error);
          throw new BackendUnavailableError(label, {
            cause: error,
            details: `GET /id: HTTP ${error.status} ${error.clusterMessage}`,
          });
        }
        throw error;
      }
    },
    async close() {
      rest.close();
      rest = transport();
    },
    async ping(signal) {
      try {
        const timeout = AbortSignal.timeout(5_000);
        await readJson(
          await rest.request("GET", "/id", {
            signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
          }),
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
    get rest() {
      return rest;
    },
    isNotPinned: (error) =>
      error instanceof ClusterRefusal &&
      (error.status === 404 || /not found|not pinned|not part of the pinset/i.test(error.message)),
    fail,
  };
}
