/**
 * `npx tsx bench/ownership-check.ts [-- --pins P --lookups L --concurrency C]`: what each
 * design of the foreign-pin check costs on a real Kubo (daemon alone on core 1 when taskset
 * works). The node holds P recursive pins of other users; L CIDs are looked up, half of them
 * pinned, half stored but not pinned (the common case before Quasar pins something new).
 *
 * - `arg`: one `pin/ls?arg=<cid>&type=recursive` per CID (no names)
 * - `arg+names`: the same with `names=true` (what the ownership rules need)
 * - `arg+names+direct`: the above, and for a CID not pinned recursively a second look with
 *   `type=direct` (a foreign direct pin, which Quasar's recursive pin would replace)
 * - `listing`: one streamed `pin/ls?type=recursive&names=true&stream=true` of the whole node,
 *   shared by a batch of B lookups (the worker's claim batch); cost per pin = listing / B
 * - `pin/add`: the pin itself (a local 64-byte block, named), for scale
 *
 * Each line: wall µs per lookup at concurrency C, and the daemon's CPU µs per lookup.
 * Last line: {"bench":"ownership-check", …}.
 */
import { randomBytes } from "node:crypto";
import { parseArgs } from "node:util";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { createRpcTransport, type RpcArgs, RpcDaemonError } from "@/backends/kubo/rpc.js";
import { startKubo } from "@/test/harness/kubo.js";
import { processCpuSeconds } from "./proc-cpu.js";

const { values } = parseArgs({
  options: {
    pins: { type: "string", default: "4000" },
    lookups: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "8" },
    batch: { type: "string", default: "256" },
  },
});
const PINS = Number(values.pins);
const LOOKUPS = Number(values.lookups);
const CONCURRENCY = Number(values.concurrency);
const BATCH = Number(values.batch);

const log = (msg: string) => process.stderr.write(`${msg}\n`);

async function pool<T>(items: readonly T[], run: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < items.length) await run(items[next++] as T);
    }),
  );
}

async function block(): Promise<{ cid: CID; bytes: Uint8Array }> {
  const bytes = new Uint8Array(randomBytes(64));
  return { cid: CID.createV1(raw.code, await sha256.digest(bytes)), bytes };
}

async function main(): Promise<void> {
  const kubo = await startKubo({ cpus: "1" });
  const rpc = createRpcTransport({
    baseUrl: new URL(kubo.apiUrl),
    authorization: undefined,
    label: "kubo",
  });
  const call = async (command: string, args: RpcArgs) => {
    try {
      for await (const _ of await rpc.call(command, { args })) {
        // drained
      }
      return true;
    } catch (error) {
      if (error instanceof RpcDaemonError && /not pinned/.test(error.daemonMessage)) return false;
      throw error;
    }
  };
  try {
    const foreign = await Promise.all(Array.from({ length: PINS }, block));
    const unpinned = await Promise.all(Array.from({ length: LOOKUPS / 2 }, block));
    const fresh = await Promise.all(Array.from({ length: LOOKUPS }, block));
    log(`storing ${PINS + LOOKUPS / 2 + LOOKUPS} blocks, pinning ${PINS} as another user…`);
    await pool([...foreign, ...unpinned, ...fresh], (o) =>
      kubo.rpc(
        "block/put",
        { "cid-codec": "raw", pin: "false" },
        { field: "file", bytes: o.bytes },
      ),
    );
    await pool(foreign, (o) => call("pin/add", { arg: o.cid.toString(), name: "other" }));
    const targets = [...foreign.slice(0, LOOKUPS / 2), ...unpinned].map((o) => o.cid.toString());

    const results: Record<string, { wallUsPerPin: number; daemonCpuUsPerPin: number }> = {};
    async function measure(name: string, count: number, work: () => Promise<void>) {
      const pid = kubo.pid() as number;
      const cpuBefore = processCpuSeconds(pid) ?? 0;
      const begin = performance.now();
      await work();
      const wall = (performance.now() - begin) / 1_000;
      const cpu = (processCpuSeconds(pid) ?? 0) - cpuBefore;
      results[name] = {
        wallUsPerPin: Math.round((wall / count) * 1e6),
        daemonCpuUsPerPin: Math.round((cpu / count) * 1e6),
      };
      log(`${name}: ${JSON.stringify(results[name])}`);
    }

    // warm-up
    await pool(targets.slice(0, 200), (cid) => call("pin/ls", { arg: cid, type: "recursive" }));
    for (let repeat = 0; repeat < 2; repeat++) {
      await measure("arg", targets.length, () =>
        pool(targets, (cid) => call("pin/ls", { arg: cid, type: "recursive" })),
      );
      await measure("arg+names", targets.length, () =>
        pool(targets, (cid) => call("pin/ls", { arg: cid, type: "recursive", names: true })),
      );
      await measure("arg+names+direct", targets.length, () =>
        pool(targets, async (cid) => {
          if (!(await call("pin/ls", { arg: cid, type: "recursive", names: true })))
            await call("pin/ls", { arg: cid, type: "direct", names: true });
        }),
      );
      const listings = 5;
      await measure("listing", listings * BATCH, async () => {
        for (let i = 0; i < listings; i++)
          await call("pin/ls", { type: "recursive", names: true, stream: true });
      });
    }
    await measure("pin/add", fresh.length, () =>
      pool(fresh, (o) => call("pin/add", { arg: o.cid.toString(), name: "quasar" })),
    );
    console.log(
      JSON.stringify({
        bench: "ownership-check",
        backend: "kubo",
        backendVersion: kubo.version,
        isolated: kubo.isolated,
        nodePins: PINS,
        lookups: targets.length,
        concurrency: CONCURRENCY,
        listingSharedBy: BATCH,
        results,
      }),
    );
  } finally {
    rpc.close();
    await kubo.destroy();
  }
}

await main();
