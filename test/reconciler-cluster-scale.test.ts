/**
 * The engine converging 10,000 CIDs through a real one-peer IPFS Cluster (inside a network
 * namespace of the test's own), a second sweep that sends the cluster nothing but its listing,
 * and the cluster daemon killed in the middle of a sweep's listing: a cut listing is never
 * taken for the whole.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend } from "@/backends/index.js";
import { type ClusterPeer, startCluster, type TestCluster } from "./harness/cluster.js";
import { rawBlocksCar } from "./harness/raw-blocks.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

const COUNT = 10_000;

describe(`engine converging ${COUNT} CIDs through a one-peer IPFS Cluster`, () => {
  let cluster: TestCluster;
  let peer: ClusterPeer;
  let f: EngineFixture;
  let backend: Backend;
  let cids: string[];
  /** Calls the engine makes on the cluster's pin role, by method. */
  const calls = new Map<string, number>();

  beforeAll(async () => {
    cluster = await startCluster({ peers: 1 });
    peer = cluster.peers[0] as ClusterPeer;
    const blocks = await rawBlocksCar(COUNT);
    cids = blocks.cids;
    await peer.kuboRpc(
      "dag/import",
      { "pin-roots": "false" },
      { field: "file", bytes: blocks.car },
    );
    f = await createEngineFixture({
      backends: [],
      pinOnlyBackends: [cluster.connectionString({ "replication-min": "1" })],
      env: { QUASAR_PIN_CONCURRENCY: "32", QUASAR_MIN_REPLICAS: "1" },
      start: false,
    });
    backend = f.pinOnly[0] as Backend;
    const pins = backend.pins as unknown as Record<string, (...args: unknown[]) => unknown>;
    for (const method of ["pin", "unpin", "getPin", "listPins"]) {
      const original = pins[method] as (...args: unknown[]) => unknown;
      pins[method] = (...args: unknown[]) => {
        calls.set(method, (calls.get(method) ?? 0) + 1);
        return original.apply(pins, args);
      };
    }
    await f.reconciler.start();
  }, 120_000);
  afterAll(async () => {
    await f?.close();
    await cluster?.destroy();
  });

  it("pins every CID, then a second sweep makes no calls but its listing", async () => {
    const started = performance.now();
    await f.wantMany(cids);
    await f.reconciler.stepOnce();
    await f.reconciler.waitIdle({ timeoutMs: 150_000 });
    const seconds = (performance.now() - started) / 1_000;
    const pinned = await f.ledger
      .selectFrom("pin_ledger")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .where("status", "=", "pinned")
      .where("backend_id", "=", backend.id)
      .executeTakeFirstOrThrow();
    expect(Number(pinned.n)).toBe(COUNT);
    console.log(`${COUNT} CIDs converged through the cluster in ${seconds.toFixed(1)} s`);

    const first = await f.reconciler.sweepOnce();
    expect(first.backends[0]).toMatchObject({ listed: COUNT, requeued: 0, unwanted: 0 });
    calls.clear();
    const second = await f.reconciler.sweepOnce();
    await f.reconciler.waitIdle({ timeoutMs: 30_000 });
    expect(second.backends[0]).toMatchObject({ listed: COUNT, requeued: 0, unwanted: 0 });
    expect(Object.fromEntries(calls)).toEqual({ listPins: 1 });
    expect(await f.reconciler.degradedCids()).toEqual([]);
  }, 200_000);

  it("takes a listing cut by the daemon's death for a failure, never for the whole", async () => {
    const logCount = async () =>
      Number(
        (
          await f.ledger
            .selectFrom("reconcile_log")
            .select((eb) => eb.fn.countAll<string>().as("n"))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = await logCount();
    // The listing is real; only the moment is chosen: the daemon is killed (SIGKILL: a
    // graceful stop finishes the answer first) after 100 pins arrived, then started again.
    const list = backend.pins.listPins;
    let killed: Promise<void> | undefined;
    backend.pins.listPins = async function* (options) {
      let seen = 0;
      for await (const pin of list.call(backend.pins, options)) {
        yield pin;
        if (++seen === 100) {
          killed = peer.service.kill();
          await killed;
        }
      }
    };
    try {
      const report = await f.reconciler.sweepOnce();
      expect(report.backends[0]?.error).toMatch(/broke off|unavailable|stream/i);
      expect(report.backends[0]?.requeued).toBe(0);
    } finally {
      backend.pins.listPins = list;
      await killed;
      await peer.service.start();
    }
    expect(await logCount()).toBe(before);
    const pinned = await f.ledger
      .selectFrom("pin_ledger")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .where("status", "=", "pinned")
      .executeTakeFirstOrThrow();
    expect(Number(pinned.n)).toBe(COUNT);
    // Back up. A crdt peer killed hard may come back without the last state it had not
    // flushed: the sweeps after the restart re-pin what the cluster lost (never unpin), until
    // one lists everything and repairs nothing.
    expect(
      await f.until(async () => {
        await f.reconciler.waitIdle({ timeoutMs: 60_000 });
        const next = await f.reconciler.sweepOnce();
        return (
          next.backends[0]?.error === undefined &&
          next.backends[0]?.listed === COUNT &&
          next.backends[0]?.requeued === 0
        );
      }, 90_000),
    ).toBe(true);
    const unpins = await f.ledger
      .selectFrom("reconcile_log")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .where("decision", "=", "unpin")
      .executeTakeFirstOrThrow();
    expect(Number(unpins.n)).toBe(0);
  }, 180_000);
});
