import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "@hono/node-server";
import type { Kysely } from "kysely";
import pino from "pino";
import { createApp } from "@/api/app.js";
import type { ApiStore } from "@/api/ports.js";
import type { ApiApp } from "@/api/routes/shared.js";
import { createApiStore } from "@/api/store.js";
import { createDashboardSource } from "@/api/ui/source.js";
import { type ContentCapableBackend, parseBackends, requireContent } from "@/backends/index.js";
import { loadConfig } from "@/core/config/load.js";
import type { QuasarConfig } from "@/core/config/schema.js";
import { connectDatabase } from "@/db/connect.js";
import type { Database } from "@/db/database.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { createReadModel } from "@/db/read-model/index.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

/**
 * One API on real parts for a suite: a fresh Postgres schema migrated to the latest
 * reconciler version, an embedded helia backend in a temp directory (offline, so nothing
 * reaches the network), the real store and the app. `listen()` serves it on a free port for
 * clients that need a socket (kubo-rpc-client, fetch). `close()` undoes everything.
 */
export type ApiFixture = {
  app: ApiApp;
  config: QuasarConfig;
  db: Kysely<Database>;
  schema: TestSchema;
  /** Both roles of every backend (the fixture takes helia and Kubo strings only). */
  backends: ContentCapableBackend[];
  store: ApiStore;
  /** The app's clock is real time plus `offsetMs`; tests move it forward. */
  clock: { offsetMs: number };
  listen(): Promise<string>;
  close(): Promise<void>;
};

export async function createApiFixture(
  options: {
    env?: Record<string, string>;
    backends?: number;
    /** The indexer's schema, for on-chain registrations in the store's answers. */
    indexerSchema?: string;
    /** Backends by connection string, before the helia ones (e.g. a Kubo daemon's). */
    backendStrings?: string[];
  } = {},
): Promise<ApiFixture> {
  const schema = await createTestSchema("api");
  const db = connectDatabase({
    databaseUrl: schema.databaseUrl,
    applicationName: "quasar-api-test",
  });
  const dirs: string[] = [];
  const backends: ContentCapableBackend[] = [];
  const servers: { close(cb: () => void): void }[] = [];
  const close = async () => {
    for (const server of servers)
      await new Promise<void>((resolve) => server.close(() => resolve()));
    for (const backend of backends) await backend.close().catch(() => {});
    await db.destroy().catch(() => {});
    await schema.drop().catch(() => {});
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  };
  try {
    await migrateToLatest(db, schema.schema);
    // parseBackends([]) would mean the default backend: only parse what was given.
    const given = options.backendStrings ?? [];
    for (const backend of given.length > 0 ? parseBackends(given) : []) {
      await backend.open();
      backends.push(requireContent(backend, "serve the API tests"));
    }
    for (let i = 0; i < (options.backends ?? (options.backendStrings ? 0 : 1)); i++) {
      const dir = await mkdtemp(join(tmpdir(), "quasar-api-"));
      dirs.push(dir);
      const [backend] = parseBackends([`helia://${dir}?offline=true`]);
      if (!backend) throw new Error("no backend");
      await backend.open();
      backends.push(requireContent(backend, "serve the API tests"));
    }
    const config = loadConfig({
      QUASAR_RECONCILER_SCHEMA: schema.schema,
      QUASAR_RATE_LIMIT: "0",
      ...options.env,
    });
    const store = createApiStore({
      db,
      reconcilerSchema: schema.schema,
      ttlMs: config.QUASAR_PIN_TTL,
      ...(options.indexerSchema
        ? { readModel: createReadModel({ db, schema: options.indexerSchema }) }
        : {}),
    });
    const clock = { offsetMs: 0 };
    const app = createApp({
      config,
      backends,
      store,
      logger: pino({ level: process.env.QUASAR_TEST_LOG ?? "silent" }),
      now: () => Date.now() + clock.offsetMs,
      dashboard: createDashboardSource({ config, db, backends }),
    });
    return {
      app,
      config,
      db,
      schema,
      backends,
      store,
      clock,
      async listen() {
        const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
        servers.push(server);
        await new Promise<void>((resolve) => server.once("listening", () => resolve()));
        const { port } = server.address() as AddressInfo;
        return `http://127.0.0.1:${port}`;
      },
      close,
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** A multipart body exactly as a browser's FormData sends it (via the platform's Request). */
export async function formDataBody(
  fields: Record<string, Blob | string>,
): Promise<{ body: Uint8Array; contentType: string }> {
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, value);
  const request = new Request("http://local/", { method: "POST", body: form });
  return {
    body: new Uint8Array(await request.arrayBuffer()),
    contentType: request.headers.get("content-type") ?? "",
  };
}
