import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import getPort from "get-port";
import { type Kysely, sql } from "kysely";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBackend } from "@/backends/index.js";
import { connectDatabase } from "@/db/connect.js";
import type { Database } from "@/db/database.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { recordUploads } from "@/db/uploads/index.js";
import { createIndexerTables } from "./desired/indexer.js";
import { upload } from "./desired/store-setup.js";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const OBJECTS = 120;
const KILLS = 4;

// The reconciler process (reconciler/main.ts, as `npm run reconciler` runs it) is killed with
// SIGKILL mid-batch again and again; each restart must re-drive what was in flight and the
// final state must be exactly the desired one, on the backends and in the ledger.
describe("reconciler process killed mid-batch", () => {
  let reconcilerSchema: TestSchema;
  let indexerSchema: TestSchema;
  let daemon: IpfsDaemon;
  let dir: string;
  let db: Kysely<Database>;
  let env: Record<string, string>;
  const children = new Set<ChildProcess>();
  const cids: CID[] = [];

  beforeAll(async () => {
    reconcilerSchema = await createTestSchema("crash");
    indexerSchema = await createTestSchema("crashi");
    daemon = await startIpfsDaemon();
    dir = await mkdtemp(join(tmpdir(), "quasar-crash-"));
    db = connectDatabase({
      databaseUrl: reconcilerSchema.databaseUrl,
      maxConnections: 4,
    });
    await createIndexerTables(db, indexerSchema.schema);
    await migrateToLatest(db, reconcilerSchema.schema);
    // Content stored on the daemon unpinned; the offline helia node gets it by CAR copy.
    for (let i = 0; i < OBJECTS; i++) {
      const bytes = new Uint8Array(randomBytes(128));
      cids.push(CID.createV1(raw.code, await sha256.digest(bytes)));
      await daemon.rpc(
        "block/put",
        { format: "raw", "cid-codec": "raw", pin: "false" },
        { field: "file", bytes },
      );
    }
    const now = new Date();
    for (const cid of cids) {
      await recordUploads(db, {
        schema: reconcilerSchema.schema,
        ttlMs: 3_600_000,
        uploads: [
          upload(cid.toString(), now, {
            size: 128,
            uploader: "crash-test",
            backendId: "elsewhere",
          }),
        ],
      });
    }
    env = {
      ...(process.env as Record<string, string>),
      DATABASE_URL: reconcilerSchema.databaseUrl,
      QUASAR_RECONCILER_SCHEMA: reconcilerSchema.schema,
      QUASAR_INDEXER_SCHEMA: indexerSchema.schema,
      QUASAR_BACKENDS: `${daemon.connectionString},helia://${join(dir, "helia")}?offline=true`,
      QUASAR_PIN_TTL: "1h",
      QUASAR_PIN_CONCURRENCY: "2",
      QUASAR_RECONCILE_INTERVAL: "200ms",
      QUASAR_RETRY_BASE: "100ms",
      QUASAR_RETRY_MAX: "500ms",
      QUASAR_LOG_LEVEL: "warn",
    };
  });
  afterAll(async () => {
    for (const child of children) child.kill("SIGKILL");
    await db?.destroy();
    await daemon?.destroy();
    await reconcilerSchema?.drop();
    await indexerSchema?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function startReconciler(metricsPort: number): { child: ChildProcess; output: () => string } {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(ROOT, "reconciler", "main.ts")],
      {
        cwd: ROOT,
        env: { ...env, QUASAR_METRICS_PORT: String(metricsPort) },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    children.add(child);
    child.once("exit", () => children.delete(child));
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8_000);
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8_000);
    });
    return { child, output: () => output };
  }

  async function counts(): Promise<Record<string, number>> {
    const rows = await db
      .withSchema(reconcilerSchema.schema)
      .selectFrom("pin_ledger")
      .select(["status", sql<number>`count(*)::int`.as("n")])
      // The uploads' own backend ("elsewhere") is not this reconciler's.
      .where("backend_id", "<>", "elsewhere")
      .groupBy("status")
      .execute();
    return Object.fromEntries(rows.map((r) => [r.status, r.n]));
  }

  async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return true;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return false;
  }

  /** Kills the process with SIGKILL once `progressed` says it is part-way through its work. */
  async function killMidway(progressed: () => Promise<boolean>): Promise<void> {
    const { child, output } = startReconciler(0);
    const reached = await waitFor(progressed, 90_000);
    child.kill("SIGKILL");
    await once(child, "exit");
    if (!reached) throw new Error(`no progress before the kill:\n${output()}`);
  }

  async function runToCompletion(done: () => Promise<boolean>): Promise<string> {
    const port = await getPort({ host: "127.0.0.1" });
    const { child, output } = startReconciler(port);
    try {
      const converged = await waitFor(done, 120_000);
      if (!converged)
        throw new Error(`did not converge:\n${output()}\n${JSON.stringify(await counts())}`);
      // It may converge before its metrics server listens (the work was nearly done).
      let metrics = "";
      await waitFor(async () => {
        metrics = await fetch(`http://127.0.0.1:${port}/metrics`).then(
          (response) => response.text(),
          () => "",
        );
        return metrics !== "";
      }, 30_000);
      child.kill("SIGTERM");
      const [code] = (await once(child, "exit")) as [number | null];
      expect(code, output()).toBe(0);
      return metrics;
    } finally {
      child.kill("SIGKILL");
    }
  }

  async function onHelia(): Promise<Set<string>> {
    const helia = createBackend(`helia://${join(dir, "helia")}?offline=true`);
    await helia.open();
    try {
      const pinned = new Set<string>();
      for await (const pin of helia.pins.listPins({})) pinned.add(pin.cid.toV1().toString());
      return pinned;
    } finally {
      await helia.close();
    }
  }
  async function onDaemon(): Promise<Set<string>> {
    const kubo = createBackend(daemon.connectionString);
    const pinned = new Set<string>();
    for await (const pin of kubo.pins.listPins({})) pinned.add(pin.cid.toV1().toString());
    return pinned;
  }

  it("pins everything exactly once across repeated SIGKILLs", async () => {
    const total = OBJECTS * 2;
    let previous = 0;
    let inFlightAtKills = 0;
    for (let i = 0; i < KILLS; i++) {
      const floor = previous;
      await killMidway(async () => {
        const c = await counts();
        return (c.pinned ?? 0) >= floor + 10 && (c.pinned ?? 0) < total;
      });
      const c = await counts();
      // Killed mid-batch: commands were in flight or claimed.
      expect(c.pinned ?? 0).toBeLessThan(total);
      inFlightAtKills += c.pinning ?? 0;
      previous = c.pinned ?? 0;
    }
    // The kills landed with commands claimed or in flight (status pinning in the ledger).
    expect(inFlightAtKills).toBeGreaterThan(0);
    const metrics = await runToCompletion(async () => (await counts()).pinned === total);
    expect(metrics).toMatch(/quasar_reconciler_operations_total\{[^}]*op="pin"/);
    expect(metrics).toMatch(/quasar_reconciler_queue_depth/);
    expect(await counts()).toEqual({ pinned: total });

    const expected = new Set(cids.map((c) => c.toString()));
    const daemonPins = await onDaemon();
    for (const cid of expected) expect(daemonPins.has(cid)).toBe(true);
    const heliaPins = await onHelia();
    expect(heliaPins).toEqual(expected);
    // Every claim was re-driven: no command left half-recorded.
    const started = await db
      .withSchema(reconcilerSchema.schema)
      .selectFrom("reconcile_log")
      .select(sql<number>`count(*)::int`.as("n"))
      .where("outcome", "=", "started")
      .executeTakeFirstOrThrow();
    expect(started.n).toBeGreaterThanOrEqual(total);
    // Five reconciler starts (tsx) and 240 pins with CAR copies: minutes on a loaded 2-core machine.
  }, 300_000);

  it("releases exactly the expired half across repeated SIGKILLs, never touching the rest", async () => {
    const expired = cids.slice(0, OBJECTS / 2).map((c) => c.toString());
    const kept = cids.slice(OBJECTS / 2).map((c) => c.toString());
    // Time passing for half of the uploads: their optimistic pins expire now. (The test edits the
    // upload table instead of waiting out a TTL, then queues the CIDs for the store's next step.)
    await sql`update ${sql.id(reconcilerSchema.schema, "optimistic_pin")} set expires_at = now() - interval '1 second' where cid = any(${expired}::text[])`.execute(
      db,
    );
    await sql`insert into ${sql.id(reconcilerSchema.schema, "desired_dirty_cid")} (cid) select unnest(${expired}::text[]) on conflict do nothing`.execute(
      db,
    );
    const releasing = expired.length * 2;
    let floor = 0;
    for (let i = 0; i < 3; i++) {
      const from = floor;
      await killMidway(async () => {
        const c = await counts();
        return (c.unpinned ?? 0) >= from + 5 || (c.unpinned ?? 0) === releasing;
      });
      floor = (await counts()).unpinned ?? 0;
      if (floor === releasing) break;
    }
    await runToCompletion(async () => {
      const c = await counts();
      return c.unpinned === releasing && c.pinned === kept.length * 2;
    });
    const daemonPins = await onDaemon();
    const heliaPins = await onHelia();
    for (const cid of kept) {
      expect(daemonPins.has(cid)).toBe(true);
      expect(heliaPins.has(cid)).toBe(true);
    }
    for (const cid of expired) {
      expect(daemonPins.has(cid)).toBe(false);
      expect(heliaPins.has(cid)).toBe(false);
    }
  }, 300_000);
});
