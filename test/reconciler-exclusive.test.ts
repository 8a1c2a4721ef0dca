import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import { CID } from "multiformats/cid";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ContentCapableBackend } from "@/backends/backend.js";
import { createApiFixture } from "./api-fixture.js";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

// `?exclusive=true`: the operator declares the daemon Quasar's alone, and the engine stops
// looking for foreign pins. This shows the declaration is honoured, and what it costs when
// it is false: a pin that was already there counts as Quasar's and is released with it.
describe("engine on a daemon declared exclusive", () => {
  let daemon: IpfsDaemon;
  let f: EngineFixture;
  let kubo: ContentCapableBackend;
  const TTL_MS = 60_000;

  beforeAll(async () => {
    daemon = await startIpfsDaemon();
    f = await createEngineFixture({
      backends: [`${daemon.connectionString}?exclusive=true`],
      env: { QUASAR_PIN_TTL: `${TTL_MS}ms` },
    });
    [kubo] = f.backends as [ContentCapableBackend];
  });
  afterAll(async () => {
    await f?.close();
    await daemon?.destroy();
  });

  it("makes no ownership checks: an existing pin counts as Quasar's and is released with it", async () => {
    expect(kubo.pins.exclusive).toBe(true);
    const answer = await daemon.rpc(
      "block/put",
      { format: "raw", "cid-codec": "raw", mhtype: "sha2-256" },
      { field: "file", bytes: new Uint8Array(randomBytes(200)) },
    );
    const cid = CID.parse((JSON.parse(answer) as { Key: string }).Key).toV1();
    const text = cid.toString();
    await daemon.rpc("pin/add", { arg: text, recursive: "true" });

    await f.want(text, new Date(Date.now() - TTL_MS + 3_000));
    expect(await f.until(async () => (await f.row(kubo, text))?.status === "pinned", 10_000)).toBe(
      true,
    );
    expect(await f.row(kubo, text)).toMatchObject({ owned: true });
    expect(
      await f.until(async () => (await f.row(kubo, text))?.status === "unpinned", 20_000),
    ).toBe(true);
    expect(await kubo.pins.getPin(cid, {})).toBeUndefined();
    const decisions = await f.ledger
      .selectFrom("reconcile_log")
      .select("decision")
      .where("cid", "=", text)
      .execute();
    expect(decisions.map((d) => d.decision)).not.toContain("adopt");
    expect(decisions.map((d) => d.decision)).not.toContain("skip_foreign");
  });

  it("uploads through the API pin without looking first: the pin is recorded as Quasar's", async () => {
    const api = await createApiFixture({
      backendStrings: [`${daemon.connectionString}?exclusive=true`],
    });
    try {
      const bytes = randomBytes(2_000);
      // Already pinned by someone: on a shared node the upload would adopt it (owned=false).
      const added = await daemon.rpc("add", { pin: "true" }, { field: "file", bytes });
      const cid = CID.parse((JSON.parse(added) as { Hash: string }).Hash)
        .toV1()
        .toString();
      const form = new FormData();
      form.append("entry", new Blob([bytes]));
      const response = await fetch(`${await api.listen()}/api/v0/add`, {
        method: "POST",
        body: form,
      });
      expect(response.status).toBe(201);
      // Answered as Kubo spells it (CIDv0); ledger rows are keyed by the CIDv1.
      expect(
        CID.parse(await response.text())
          .toV1()
          .toString(),
      ).toBe(cid);
      const rows = async () =>
        (
          await sql<{
            status: string;
            owned: boolean;
          }>`select status, owned from ${sql.table(
            `${api.schema.schema}.pin_ledger`,
          )} where cid = ${cid}`.execute(api.db)
        ).rows;
      // The answer does not wait for the ledger's confirmation (api/upload.ts, step 5).
      await expect.poll(rows).toEqual([{ status: "pinned", owned: true }]);
    } finally {
      await api.close();
    }
  });
});
