import type { Backend } from "../backend.js";
import { BackendRequestError } from "../errors.js";
import type { BackendLifecycle } from "../lifecycle.js";
import { createPsaClient } from "./client.js";
import type { PsaBackendParams } from "./connection-string.js";
import { createPsaPins } from "./pins.js";

/**
 * An IPFS Pinning Service API provider (`psa+https://…`): the pin role only (a provider
 * serves no bytes to Quasar). Notes: backends/README.md.
 */
export function createPsaBackend(params: PsaBackendParams): Backend {
  const client = createPsaClient(params);
  const probe = async (signal?: AbortSignal) => {
    const { status, body } = await client.call("open", "GET", "/pins", {
      query: { limit: "1" },
      ...(signal ? { signal } : {}),
    });
    if (status === 404) {
      throw new BackendRequestError(
        params.label,
        "open",
        "GET /pins answered 404: give the API root (the URL `ipfs pin remote service add` takes, without /pins)",
      );
    }
    client.page("open", body);
  };
  const lifecycle: BackendLifecycle = {
    id: params.id,
    designator: "psa",
    label: params.label,
    async open() {
      await probe();
    },
    async close() {},
    async ping(signal) {
      try {
        await probe(signal ?? AbortSignal.timeout(5_000));
        return true;
      } catch {
        return false;
      }
    },
  };
  return { ...lifecycle, pins: createPsaPins(client, lifecycle) };
}

export {
  PSA_FORMS,
  PSA_OWNER_META,
  type PsaBackendParams,
  parsePsaConnectionString,
} from "./connection-string.js";
