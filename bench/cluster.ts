/**
 * IPFS Cluster benchmark: Quasar converging N desired CIDs through a real cluster against the
 * same N `POST /pins` made directly, in one run, on one cluster.
 *
 *   npm run bench:cluster -- [--cids 20000] [--concurrency 32] [--rounds 4] [--peers 1]
 *                            [--timeout 900]  (seconds either side may take per round)
 *
 * A cluster (ipfs-cluster-service 1.1.6, crdt, each peer with its own Kubo) runs inside a
 * network namespace of its own (test/harness/cluster.ts; needs root). 2N distinct raw blocks
 * are imported into the first peer's Kubo unpinned. Then:
 *  (a) direct: N `POST /pins/{cid}` (name, metadata, replication 1) from `concurrency` clients,
 *      timed until the cluster reports every one pinned (directPerSec: the same end state as
 *      Quasar's), and until the last POST was accepted (directAcceptPerSec);
 *  (b) Quasar: the other N CIDs made desired, the engine (QUASAR_PIN_CONCURRENCY =
 *      concurrency) pins them through the cluster backend until idle (quasarPerSec): ownership
 *      look, POST, wait for the trackers, ledger write;
 *  (a) and (b) run in `rounds` rounds (default 4) of N/rounds each, alternating which goes
 *  first;
 *  (c) a full sweep over the 2N cluster pins (sweepSeconds), the same sweep again in a fresh
 *      process (bench/cluster-sweep.ts: sweepChildSeconds, sweepChildMaxRssMB, Node included),
 *      and the cluster's own `GET /pins` stream read alone (listOnlySeconds), the times
 *      extrapolated linearly to 1M pins.
 * The last line of output is the result as JSON.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { CID } from "multiformats/cid";
import { startCluster } from "@/test/harness/cluster.js";
import { rawBlocksCar } from "@/test/harness/raw-blocks.js";
import { createEngineFixture } from "@/test/reconciler-fixture.js";

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  const value = Number(index === -1 ? fallback : process.argv[index + 1]);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new Error(`--${name} expects a positive whole number`);
  return value;
}

function log(message: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ msg: message, ...fields }));
}

async function pool<T>(items: readonly T[], size: number, task: (item: T) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: size }, async () => {
      while (next < items.length) await task(items[next++] as T);
    }),
  );
}

/**
 * Waits until the cluster reports every one of `cids` pinned, asking for 200 at a time; fails
 * naming a CID still pending after `timeoutMs` (a pin the cluster lost must not hang the bench).
 */
async function waitPinned(
  restUrl: string,
  cids: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pending = [...cids];
  while (pending.length > 0) {
    if (Date.now() > deadline) {
      const first = pending[0] ?? "";
      const status = await fetch(`${restUrl}/pins/${first}`).then((r) => r.text());
      throw new Error(
        `${pending.length} direct pins not pinned after ${timeoutMs / 1_000} s; the first, ${first}: ${status.slice(0, 2_000)}`,
      );
    }
    const still: string[] = [];
    for (let i = 0; i < pending.length; i += 200) {
      const batch = pending.slice(i, i + 200);
      const response = await fetch(`${restUrl}/pins?cids=${batch.join(",")}`);
      const text = await response.text();
      // A CID the answer leaves out (its look failed on the cluster's side) is still pending.
      const pinned = new Set<string>();
      for (const line of text.split("\n")) {
        if (line.trim() === "") continue;
        const info = JSON.parse(line) as {
          cid: string;
          peer_map: Record<string, { status: string }>;
        };
        if (Object.values(info.peer_map).some((p) => p.status === "pinned"))
          pinned.add(CID.parse(info.cid).toV1().toString());
      }
      for (const cid of batch) if (!pinned.has(cid)) still.push(cid);
    }
    pending = still;
    if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** Runs bench/cluster-sweep.ts in a child process: one sweep, its own peak RSS. */
async function sweepInChild(
  env: Record<string, string>,
): Promise<{ sweepSeconds: number; listed: number; maxRssMB: number }> {
  const script = join(import.meta.dirname, "cluster-sweep.ts");
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`cluster-sweep.ts exited with ${code}`);
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}");
}

/** Lines of a streamed `GET /pins[?filter=…]`, counted without holding the answer. */
async function countPins(restUrl: string, filter?: string): Promise<number> {
  const response = await fetch(`${restUrl}/pins${filter ? `?filter=${filter}` : ""}`);
  if (!response.body) return 0;
  let lines = 0;
  for await (const chunk of response.body) {
    for (const byte of chunk as Uint8Array) if (byte === 10) lines++;
  }
  return lines;
}

const round = (value: number, digits = 2) => Number(value.toFixed(digits));

async function main(): Promise<void> {
  const cids = argument("cids", 20_000);
  const concurrency = argument("concurrency", 32);
  const peers = argument("peers", 1) === 2 ? 2 : 1;
  const rounds = argument("rounds", 4);
  const timeoutSeconds = argument("timeout", 900);
  const cluster = await startCluster({ peers });
  const peer = cluster.peers[0];
  if (!peer) throw new Error("no peer");
  try {
    const started = performance.now();
    for (let i = 0; i < 2 * cids; i += 50_000) {
      const { cids: made, car } = await rawBlocksCar(Math.min(50_000, 2 * cids - i));
      await peer.kuboRpc("dag/import", { "pin-roots": "false" }, { field: "file", bytes: car });
      blocks.push(...made);
    }
    log("blocks imported", {
      blocks: blocks.length,
      seconds: round((performance.now() - started) / 1_000),
    });
    const f = await createEngineFixture({
      backends: [],
      pinOnlyBackends: [cluster.connectionString({ "replication-min": "1" })],
      env: {
        QUASAR_PIN_CONCURRENCY: String(concurrency),
        QUASAR_MIN_REPLICAS: "1",
        QUASAR_LOG_LEVEL: "warn",
      },
    });
    try {
      // Rounds alternate which side goes first, so a cluster growing (or a machine getting
      // busier) during the run weighs on both alike.
      const per = Math.ceil(cids / rounds);
      let directSeconds = 0;
      let directAcceptSeconds = 0;
      let quasarSeconds = 0;
      for (let r = 0; r < rounds; r++) {
        const direct = blocks.slice(r * per, Math.min((r + 1) * per, cids));
        const ours = blocks.slice(cids + r * per, cids + Math.min((r + 1) * per, cids));
        const runDirect = async () => {
          const t = performance.now();
          await pool(direct, concurrency, async (cid) => {
            const url = `${peer.restUrl}/pins/${cid}?name=direct&meta-bench=direct&mode=recursive&replication-min=1&replication-max=1`;
            const response = await fetch(url, { method: "POST" });
            await response.text();
            if (!response.ok) throw new Error(`POST /pins answered ${response.status}`);
          });
          directAcceptSeconds += (performance.now() - t) / 1_000;
          await waitPinned(peer.restUrl, direct, timeoutSeconds * 1_000);
          directSeconds += (performance.now() - t) / 1_000;
        };
        const runQuasar = async () => {
          const t = performance.now();
          await f.wantMany(ours);
          await f.reconciler.stepOnce();
          await f.reconciler.waitIdle({ timeoutMs: timeoutSeconds * 1_000 });
          quasarSeconds += (performance.now() - t) / 1_000;
        };
        if (r % 2 === 0) {
          await runDirect();
          await runQuasar();
        } else {
          await runQuasar();
          await runDirect();
        }
        log("round", { round: r + 1, directSeconds, quasarSeconds });
      }

      // (c) sweeps: one in this process, one in a fresh process for its peak RSS
      let t = performance.now();
      const sweep = await f.reconciler.sweepOnce();
      const sweepSeconds = (performance.now() - t) / 1_000;
      const listed = sweep.backends[0]?.listed ?? 0;
      const child = await sweepInChild({
        DATABASE_URL: f.databaseUrl,
        QUASAR_RECONCILER_SCHEMA: f.reconcilerSchema,
        QUASAR_INDEXER_SCHEMA: f.indexerSchema,
        QUASAR_BACKENDS: cluster.connectionString({ "replication-min": "1" }),
        QUASAR_MIN_REPLICAS: "1",
      });
      log("sweep in a fresh process", child);
      t = performance.now();
      const listOnly = await countPins(peer.restUrl);
      const listOnlySeconds = (performance.now() - t) / 1_000;
      const perMillion = 1_000_000 / Math.max(listed, 1);
      console.log(
        JSON.stringify({
          bench: "cluster",
          cids,
          quasarPerSec: round(cids / quasarSeconds),
          directPerSec: round(cids / directSeconds),
          ratio: round(directSeconds / quasarSeconds, 3),
          sweepSeconds: round(sweepSeconds, 3),
          directAcceptPerSec: round(cids / directAcceptSeconds),
          concurrency,
          peers,
          sweepListed: listed,
          sweepError: sweep.backends[0]?.error ?? null,
          sweepChildSeconds: round(child.sweepSeconds, 3),
          sweepChildMaxRssMB: round(child.maxRssMB, 1),
          listOnlyPins: listOnly,
          listOnlySeconds: round(listOnlySeconds, 3),
          sweep1MEstimateSeconds: round(sweepSeconds * perMillion, 1),
          listOnly1MEstimateSeconds: round(listOnlySeconds * perMillion, 1),
        }),
      );
    } finally {
      await f.close();
    }
  } finally {
    await cluster.destroy();
  }
}

const blocks: string[] = [];
main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
