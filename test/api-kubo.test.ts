import { create } from "kubo-rpc-client";
import { sql } from "kysely";
import { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";

/**
 * The API with a real Kubo daemon as its first backend: uploads go
 * to the daemon, reads come back from it, and a failed record leaves no pin on the daemon
 * (the API pins only after recording).
 */
describe("API on a Kubo daemon", () => {
  let daemon: IpfsDaemon;
  let fixture: ApiFixture;
  let base: string;
  beforeAll(async () => {
    daemon = await startIpfsDaemon();
    fixture = await createApiFixture({ backendStrings: [daemon.connectionString] });
    base = await fixture.listen();
  });
  afterAll(async () => {
    await fixture?.close();
    await daemon?.destroy();
  });

  const daemonPins = async (): Promise<string[]> => {
    const text = await daemon.rpc("pin/ls", { type: "recursive" });
    return Object.keys((JSON.parse(text) as { Keys?: Record<string, unknown> }).Keys ?? {}).map(
      (k) => CID.parse(k).toV1().toString(),
    );
  };

  it("stores Aragon and Kubo uploads on the daemon, pinned, and serves them back", async () => {
    const form = new FormData();
    form.append("entry", new Blob(["through the daemon"]));
    const response = await fetch(`${base}/api/v0/add`, { method: "POST", body: form });
    expect(response.status).toBe(201);
    const cid = await response.text();
    // Kubo's add default (CIDv0), as the daemon itself would answer; daemonPins spells v1.
    expect(CID.parse(cid).version).toBe(0);
    expect(await daemonPins()).toContain(CID.parse(cid).toV1().toString());
    expect(await (await fetch(`${base}/api/v0/cat?arg=${cid}`)).text()).toBe("through the daemon");

    const client = create({ url: `${base}/kubo/api/v0` });
    const added = await client.add(new Uint8Array(400_000).fill(9));
    expect(await daemonPins()).toContain(added.cid.toV1().toString());
    const dagCid = await client.dag.put({ on: "kubo" });
    expect((await client.dag.get(dagCid)).value).toEqual({ on: "kubo" });
    const pinStatus = async () =>
      (await (await fetch(`${base}/api/v0/pins/${dagCid}`)).json()) as {
        backends: { backend: string; status: string }[];
      };
    // The answer does not wait for the ledger's confirmation (api/upload.ts, step 5).
    await expect
      .poll(async () => (await pinStatus()).backends)
      .toEqual([expect.objectContaining({ backend: fixture.backends[0]!.id, status: "pinned" })]);
    const status = await pinStatus();
    // The backend is named by id only: the daemon's address never appears.
    expect(JSON.stringify(status)).not.toContain(String(daemon.port));
  });

  it("when recording fails, the daemon holds no new pin", async () => {
    const before = (await daemonPins()).sort();
    // Fault injection on a real database: the ledger table vanishes after the daemon stored the file.
    const table = sql.table(`${fixture.schema.schema}.pin_ledger`);
    await sql`alter table ${table} rename to pin_ledger_gone`.execute(fixture.db);
    try {
      const form = new FormData();
      form.append("entry", new Blob([`never recorded on the daemon ${Date.now()}`]));
      const response = await fetch(`${base}/api/v0/add`, { method: "POST", body: form });
      expect(response.status).toBe(503);
      expect(await response.text()).not.toContain(String(daemon.port));
    } finally {
      await sql`alter table ${sql.table(`${fixture.schema.schema}.pin_ledger_gone`)} rename to pin_ledger`.execute(
        fixture.db,
      );
    }
    expect((await daemonPins()).sort()).toEqual(before);
  });
});
