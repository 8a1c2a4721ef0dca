import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import type { CID } from "multiformats/cid";
import pino from "pino";
import { createApp } from "@/api/app.js";
import { createApiStore } from "@/api/store.js";
import { loadConfig } from "@/core/config/load.js";
import { type KuboDaemon, startKubo } from "./harness/kubo.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

/**
 * A whole second Quasar serving the Pinning Service API: its own Kubo daemon, its reconciler
 * (fast test timings) and its API on a free port, for tests where one Quasar (or any client)
 * pins into another. Content reaches it by `addUnpinned` (added to its Kubo, not pinned).
 */
export type PsaProvider = {
  /** `http://127.0.0.1:<port>/psa`: the URL `ipfs pin remote service add` takes. */
  url: string;
  key: string;
  kubo: KuboDaemon;
  engine: EngineFixture;
  /** Adds bytes to the provider's Kubo without pinning; answers the CID (v1). */
  addUnpinned(bytes: Uint8Array): Promise<CID>;
  /** Whether the provider's Kubo holds a recursive pin of `cid`. */
  pinnedOnKubo(cid: string): Promise<boolean>;
  close(): Promise<void>;
};

export async function startPsaProvider(key = "provider-key"): Promise<PsaProvider> {
  const kubo = await startKubo();
  let engine: EngineFixture | undefined;
  try {
    engine = await createEngineFixture({ backends: [kubo.connectionString] });
    const config = loadConfig({
      QUASAR_RECONCILER_SCHEMA: engine.reconcilerSchema,
      QUASAR_API_KEYS: key,
      QUASAR_RATE_LIMIT: "0",
    });
    const app = createApp({
      config,
      backends: engine.backends,
      store: createApiStore({
        db: engine.db,
        reconcilerSchema: engine.reconcilerSchema,
        ttlMs: config.QUASAR_PIN_TTL,
      }),
      logger: pino({ level: "silent" }),
    });
    const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
    await new Promise<void>((resolve) => server.once("listening", () => resolve()));
    const port = (server.address() as AddressInfo).port;
    const running = engine;
    const { CID: CidClass } = await import("multiformats/cid");
    return {
      url: `http://127.0.0.1:${port}/psa`,
      key,
      kubo,
      engine: running,
      async addUnpinned(bytes) {
        const answer = await kubo.rpc(
          "add",
          { pin: "false", "cid-version": "1" },
          { field: "file", bytes },
        );
        return CidClass.parse((JSON.parse(answer) as { Hash: string }).Hash);
      },
      async pinnedOnKubo(cid) {
        const answer = await kubo.rpc("pin/ls", { type: "recursive", stream: "true" });
        return answer.includes(cid);
      },
      async close() {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await running.close();
        await kubo.destroy();
      },
    };
  } catch (error) {
    await engine?.close().catch(() => {});
    await kubo.destroy().catch(() => {});
    throw error;
  }
}
