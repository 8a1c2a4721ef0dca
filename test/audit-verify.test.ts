/**
 * `quasar audit verify` and `quasar audit log` against a real Postgres (the reconciler's
 * own migrations) and a real embedded IPFS node (helia, offline, in a temp directory).
 * The desired set and the ledger are written as the reconciler would leave them.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sql } from "kysely";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseBackends, QUASAR_PIN_NAME, requireContent } from "@/backends/index.js";
import { connectDatabase } from "@/db/connect.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

const ROOT = join(import.meta.dirname, "..");

let db: TestSchema;
let kysely: ReturnType<typeof connectDatabase>;
let ipfsDir: string;
let backendString: string;
let backendId: string;
const cids: Record<"desiredPinned" | "desiredMissing" | "extraOurs" | "foreign", string> = {
  desiredPinned: "",
  desiredMissing: "",
  extraOurs: "",
  foreign: "",
};

async function* bytes(text: string): AsyncIterable<Uint8Array> {
  yield new TextEncoder().encode(text);
}

async function quasar(args: string[], schema: string = db.schema) {
  const child = spawn(
    join(ROOT, "node_modules", ".bin", "node"),
    [join(ROOT, "bin", "quasar.js"), ...args],
    {
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        DATABASE_URL: db.databaseUrl,
        QUASAR_RECONCILER_SCHEMA: schema,
        QUASAR_INDEXER_SCHEMA: `${db.schema}_idx`,
        QUASAR_BACKENDS: backendString,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  return { code, stdout, stderr };
}

beforeAll(async () => {
  db = await createTestSchema("verify");
  kysely = connectDatabase({ databaseUrl: db.databaseUrl, applicationName: "audit-verify-test" });
  await migrateToLatest(kysely, db.schema);
  ipfsDir = await mkdtemp(join(tmpdir(), "quasar-verify-ipfs-"));
  backendString = `helia://${ipfsDir}?offline=true`;
  const [parsed] = parseBackends([backendString]);
  if (!parsed) throw new Error("no backend");
  const backend = requireContent(parsed, "hold the test content");
  backendId = backend.id;
  await backend.open();
  try {
    cids.desiredPinned = (
      await backend.content.addFile(bytes("desired and pinned"), { name: QUASAR_PIN_NAME })
    ).cid
      .toV1()
      .toString();
    cids.extraOurs = (
      await backend.content.addFile(bytes("ours, no longer desired"), { name: QUASAR_PIN_NAME })
    ).cid
      .toV1()
      .toString();
    cids.foreign = (
      await backend.content.addFile(bytes("someone else's"), { name: "someone-else" })
    ).cid
      .toV1()
      .toString();
  } finally {
    await backend.close();
  }
  cids.desiredMissing = CID.createV1(
    0x55,
    await sha256.digest(new TextEncoder().encode("never stored")),
  ).toString();

  const desired = sql.ref(`${db.schema}.desired_cid`);
  for (const cid of [cids.desiredPinned, cids.desiredMissing]) {
    await sql`insert into ${desired} (cid, reasons, next_change_at, is_confirmed, is_pending, is_optimistic, is_demoted, updated_at)
      values (${cid}, '[]'::jsonb, null, true, false, false, false, now())`.execute(kysely);
  }
  const ledger = sql.ref(`${db.schema}.pin_ledger`);
  await sql`insert into ${ledger} (backend_id, cid, status, owned) values
    (${backendId}, ${cids.desiredPinned}, 'pinned', true),
    (${backendId}, ${cids.extraOurs}, 'pinned', true)`.execute(kysely);
  const log = sql.ref(`${db.schema}.reconcile_log`);
  await sql`insert into ${log} (at, backend_id, cid, decision, reason, outcome, error) values
    (${new Date("2026-01-01T00:00:00Z")}, ${backendId}, ${cids.desiredPinned}, 'pin', 'confirmed', 'started', null),
    (${new Date("2026-01-01T00:00:05Z")}, ${backendId}, ${cids.desiredPinned}, 'pin', 'confirmed', 'ok', null),
    (${new Date("2026-02-01T00:00:00Z")}, ${backendId}, ${cids.extraOurs}, 'unpin', 'ttl expired', 'error', 'backend down')`.execute(
    kysely,
  );
}, 120_000);

afterAll(async () => {
  await kysely?.destroy();
  await db?.drop();
  if (ipfsDir) await rm(ipfsDir, { recursive: true, force: true });
});

describe("audit verify", () => {
  it("lists missing, extra-but-ours and foreign pins and exits 1 when something desired is missing", async () => {
    const result = await quasar(["audit", "verify", "--json", "--sample", "1"]);
    expect(result.code, result.stderr).toBe(1);
    const report = JSON.parse(result.stdout) as {
      ok: boolean;
      desired: number;
      backends: {
        missing: string[];
        extraOurs: string[];
        foreign: number;
        pinned: number;
        sampled: { cid: string; complete: boolean; blocks: number }[];
      }[];
    };
    expect(report.ok).toBe(false);
    expect(report.desired).toBe(2);
    const [backend] = report.backends;
    expect(backend?.missing).toEqual([cids.desiredMissing]);
    expect(backend?.extraOurs).toEqual([cids.extraOurs]);
    expect(backend?.foreign).toBe(1);
    expect(backend?.pinned).toBe(3);
    // The one pinned desired CID, walked block by block.
    expect(backend?.sampled).toEqual([{ cid: cids.desiredPinned, complete: true, blocks: 1 }]);
  }, 120_000);

  it("exits 0 once nothing desired is missing", async () => {
    await sql`delete from ${sql.ref(`${db.schema}.desired_cid`)} where cid = ${cids.desiredMissing}`.execute(
      kysely,
    );
    const result = await quasar(["audit", "verify"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("desired CIDs: 1");
    // Extra pins of ours are reported but are not a failure: the reconciler releases them.
    expect(result.stdout).toMatch(new RegExp(`^extra .* ${cids.extraOurs}$`, "m"));
    // Progress off a terminal: plain lines on stderr, the listing's last one says done.
    expect(result.stderr).toMatch(/^reading the desired set: done, 1 CIDs in \d+\.\d s$/m);
    expect(result.stderr).toMatch(/^listing .*'s pins: done, 3 pins in \d+\.\d s$/m);
  }, 120_000);
});

describe("audit verify without a readable ledger", () => {
  it("fails with a message instead of reporting Quasar's own pins as foreign", async () => {
    // A schema whose ledger says Quasar owns the pin named "someone-else" (e.g. one the
    // reconciler adopted then took over), and whose pin_ledger then becomes unreadable: a
    // real Postgres failure (undefined_table), not a mock.
    const other = await createTestSchema("verify_noledger");
    try {
      await migrateToLatest(kysely, other.schema);
      await sql`insert into ${sql.ref(`${other.schema}.desired_cid`)} (cid, reasons, next_change_at, is_confirmed, is_pending, is_optimistic, is_demoted, updated_at)
        values (${cids.desiredPinned}, '[]'::jsonb, null, true, false, false, false, now())`.execute(
        kysely,
      );
      await sql`insert into ${sql.ref(`${other.schema}.pin_ledger`)} (backend_id, cid, status, owned)
        values (${backendId}, ${cids.foreign}, 'pinned', true)`.execute(kysely);
      await sql`alter table ${sql.table(`${other.schema}.pin_ledger`)} rename to pin_ledger_gone`.execute(
        kysely,
      );
      const result = await quasar(["audit", "verify", "--json"], other.schema);
      // Nothing desired is missing: only the unreadable ledger may fail the command.
      expect(result.code).toBe(1);
      expect(result.stderr).toContain("cannot read the pin ledger");
      expect(result.stderr).toContain(`${other.schema}.pin_ledger`);
      // No report at all, so no pin of Quasar's is counted as foreign.
      expect(result.stdout).toBe("");
    } finally {
      await other.drop();
    }
  }, 120_000);
});

describe("audit log", () => {
  it("shows a CID's pins and unpins with why and the outcome, newest first", async () => {
    const result = await quasar(["audit", "log", "--cid", cids.desiredPinned, "--json"]);
    expect(result.code, result.stderr).toBe(0);
    const rows = result.stdout
      .trim()
      .split("\n")
      .map(
        (line) =>
          JSON.parse(line) as { decision: string; outcome: string; reason: string; cid: string },
      );
    expect(rows.map((row) => row.outcome)).toEqual(["ok", "started"]);
    expect(rows.every((row) => row.cid === cids.desiredPinned && row.reason === "confirmed")).toBe(
      true,
    );
  }, 60_000);

  it("filters by time range", async () => {
    const result = await quasar([
      "audit",
      "log",
      "--since",
      "2026-01-15T00:00:00Z",
      "--until",
      "2026-03-01T00:00:00Z",
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain("ttl expired");
    expect(result.stdout).toContain("backend down");
    expect(result.stdout).not.toContain(cids.desiredPinned);
  }, 60_000);
});
