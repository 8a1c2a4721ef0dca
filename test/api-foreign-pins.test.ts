import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import { CID } from "multiformats/cid";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDesiredStore } from "@/db/desired/index.js";
import { createReconciler, type Reconciler } from "@/reconciler/engine/engine.js";
import { createReconcilerMetrics } from "@/reconciler/engine/metrics.js";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";
import { createIndexerTables } from "./desired/indexer.js";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

/**
 * Uploads to a shared node (a real Kubo daemon) where another user pins content too:
 * the API stores without pinning, looks at the daemon's pin, records, and only then pins.
 * So a failed record never removes the other user's pin, an upload of their content is
 * adopted (owned=false) and the reconciler never unpins it after the TTL, while Quasar's
 * own upload is pinned, owned, and unpinned after the TTL.
 */

const TTL_SECONDS = 8;

describe("uploads on a shared node never remove a foreign pin", () => {
  let daemon: IpfsDaemon;
  let indexer: TestSchema;
  let fixture: ApiFixture;
  let reconciler: Reconciler;
  let base: string;

  beforeAll(async () => {
    daemon = await startIpfsDaemon();
    indexer = await createTestSchema("apifi");
    fixture = await createApiFixture({
      backendStrings: [daemon.connectionString],
      env: {
        QUASAR_INDEXER_SCHEMA: indexer.schema,
        QUASAR_PIN_TTL: `${TTL_SECONDS}s`,
        QUASAR_RECONCILE_INTERVAL: "300ms",
        QUASAR_FULL_SWEEP_INTERVAL: "1h",
        QUASAR_RETRY_BASE: "200ms",
        QUASAR_RETRY_MAX: "1s",
      },
    });
    // The indexer's tables, empty (no chain events): uploads are the only desired CIDs.
    await createIndexerTables(fixture.db, indexer.schema);
    reconciler = createReconciler({
      common: { logger: pino({ level: "silent" }), metrics: createReconcilerMetrics() },
      db: fixture.db,
      backends: fixture.backends,
      desiredStore: createDesiredStore({
        db: fixture.db,
        indexerSchema: indexer.schema,
        reconcilerSchema: fixture.schema.schema,
        ttlMs: fixture.config.QUASAR_PIN_TTL,
      }),
      config: fixture.config,
    });
    await reconciler.start();
    base = await fixture.listen();
  });

  afterAll(async () => {
    await reconciler?.stop();
    await fixture?.close();
    await indexer?.drop();
    await daemon?.destroy();
  });

  const daemonPins = async (): Promise<string[]> => {
    const text = await daemon.rpc("pin/ls", { type: "recursive" });
    return Object.keys((JSON.parse(text) as { Keys?: Record<string, unknown> }).Keys ?? {}).map(
      (k) => CID.parse(k).toV1().toString(),
    );
  };
  /**
   * Another user of the daemon adds `bytes` (Kubo's add defaults, as Quasar's uploads) and
   * pins the CIDv1 spelling Quasar keys: on Kubo a Qm… pin is a separate pin of the same
   * blocks, which Quasar neither adopts nor touches (test/reconciler-kubo.test.ts).
   */
  const pinForeign = async (bytes: Uint8Array): Promise<string> => {
    const answer = await daemon.rpc("add", { pin: "false" }, { field: "file", bytes });
    const cid = CID.parse((JSON.parse(answer) as { Hash: string }).Hash)
      .toV1()
      .toString();
    await daemon.rpc("pin/add", { arg: cid });
    return cid;
  };
  const upload = (bytes: Uint8Array) => {
    const form = new FormData();
    form.append("entry", new Blob([bytes]));
    return fetch(`${base}/api/v0/add`, { method: "POST", body: form });
  };
  const ledgerRow = async (cid: string) =>
    (
      await sql<{ status: string; owned: boolean }>`select status, owned from ${sql.table(
        `${fixture.schema.schema}.pin_ledger`,
      )} where cid = ${cid} and backend_id = ${fixture.backends[0]!.id}`.execute(fixture.db)
    ).rows[0];
  const decisions = async (cid: string) =>
    (
      await sql<{ decision: string }>`select decision from ${sql.table(
        `${fixture.schema.schema}.reconcile_log`,
      )} where cid = ${cid} order by id`.execute(fixture.db)
    ).rows.map((row) => row.decision);
  const withTableGone = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const schema = fixture.schema.schema;
    // Fault injection on a real database: the table vanishes, so recording the upload fails.
    await sql`alter table ${sql.table(`${schema}.${name}`)} rename to ${sql.id(`${name}_gone`)}`.execute(
      fixture.db,
    );
    try {
      return await run();
    } finally {
      await sql`alter table ${sql.table(`${schema}.${name}_gone`)} rename to ${sql.id(name)}`.execute(
        fixture.db,
      );
    }
  };

  it("a failed record of content someone else pinned leaves their pin in place", async () => {
    const bytes = randomBytes(300_000);
    const foreign = await pinForeign(bytes);
    for (const table of ["pin_ledger", "optimistic_pin"]) {
      const response = await withTableGone(table, () => upload(bytes));
      expect(response.status, table).toBe(503);
      expect(await daemonPins(), table).toContain(foreign);
      expect(await ledgerRow(foreign), table).toBeUndefined();
    }
  });

  it("a failed record of new content leaves no pin behind", async () => {
    const before = (await daemonPins()).sort();
    const response = await withTableGone("pin_ledger", () =>
      upload(new TextEncoder().encode(`never recorded ${randomBytes(8).toString("hex")}`)),
    );
    expect(response.status).toBe(503);
    expect((await daemonPins()).sort()).toEqual(before);
  });

  it("after the TTL the engine unpins Quasar's own upload and leaves the adopted foreign pin", async () => {
    const foreignBytes = randomBytes(300_000);
    const foreign = await pinForeign(foreignBytes);
    const oursBytes = randomBytes(300_000);

    const adopted = await upload(foreignBytes);
    expect(adopted.status).toBe(201);
    // Answered as Kubo spells it (CIDv0); ledger and pins are keyed by the CIDv1.
    expect(
      CID.parse(await adopted.text())
        .toV1()
        .toString(),
    ).toBe(foreign);
    const own = await upload(oursBytes);
    expect(own.status).toBe(201);
    const ours = CID.parse(await own.text())
      .toV1()
      .toString();
    const uploadedAt = Date.now();

    expect(await ledgerRow(foreign)).toEqual({ status: "pinned", owned: false });
    // The engine's desired step may log its own `queue` (want) on the row: never a pin command.
    expect((await decisions(foreign))[0]).toBe("adopt");
    expect(await decisions(foreign)).not.toContain("pin");
    // The upload's answer does not wait for its confirmation (api/upload.ts, step 5).
    await expect.poll(() => ledgerRow(ours)).toEqual({ status: "pinned", owned: true });
    expect((await decisions(ours))[0]).toBe("queue");
    expect(await decisions(ours)).toContain("record_owned");
    expect(await decisions(ours)).not.toContain("adopt");
    expect(await daemonPins()).toEqual(expect.arrayContaining([foreign, ours]));

    // Past the TTL nothing desires either CID: the engine unpins its own, releases the other.
    const remaining = uploadedAt + TTL_SECONDS * 1000 - Date.now();
    if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const [a, b] = await Promise.all([ledgerRow(foreign), ledgerRow(ours)]);
      if (a?.status === "unpinned" && b?.status === "unpinned") break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    expect(await ledgerRow(ours)).toMatchObject({ status: "unpinned" });
    expect(await ledgerRow(foreign)).toMatchObject({ status: "unpinned", owned: false });
    const pins = await daemonPins();
    expect(pins).not.toContain(ours);
    expect(pins).toContain(foreign);
    expect(await decisions(foreign)).not.toContain("unpin");
  });
});
