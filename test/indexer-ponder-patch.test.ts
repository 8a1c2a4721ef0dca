/**
 * Guards patches/ponder+0.17.7.patch (applied by `npm install`'s postinstall). Its first part:
 * a transport that enforces its own budget (`value.selfLimited`, built in ponder.config.ts)
 * bypasses Ponder's adaptive JSON-RPC limiter. (Its second part groups the backfill's sync-store
 * inserts: test/indexer-backfill-groups.test.ts.) Without the patch the indexer is held to Ponder's
 * 20 requests/s start and wedges after an RPC stall (issue 9), silently. These tests fail
 * loudly when a Ponder upgrade no longer matches the patch: re-read Ponder's
 * rpc/index.js, redo the patch for the new version (or drop it if Ponder gained an option).
 *
 * They drive Ponder's real `createRpc` with a transport that answers in-process: the
 * behaviour under test is Ponder's scheduling, not the network.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { createTransport, type EIP1193RequestFn, TimeoutError, type Transport } from "viem";
import { describe, expect, it } from "vitest";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const PONDER = join(ROOT, "node_modules", "ponder");
const PATCHED_VERSION = "0.17.7";

type Rpc = { request(body: { method: string; params?: unknown[] }): Promise<unknown> };
type CreateRpc = (args: { common: unknown; chain: unknown; concurrency?: number }) => Rpc;

async function loadCreateRpc(): Promise<CreateRpc> {
  const module = (await import(
    pathToFileURL(join(PONDER, "dist", "esm", "rpc", "index.js")).href
  )) as { createRpc: CreateRpc };
  return module.createRpc;
}

/** The parts of Ponder's `common` that createRpc touches; logs are dropped. */
function common() {
  const noop = () => {};
  const cleanups: (() => void)[] = [];
  return {
    value: {
      logger: { trace: noop, debug: noop, info: noop, warn: noop, error: noop },
      metrics: {
        ponder_rpc_request_duration: { observe: noop },
        ponder_rpc_request_error_total: { inc: noop },
      },
      shutdown: { add: (cleanup: () => void) => cleanups.push(cleanup), isKilled: false },
    },
    close: () => {
      for (const cleanup of cleanups) cleanup();
    },
  };
}

/** A transport answering eth_blockNumber at once; `failFirst` requests time out first. */
function localTransport(selfLimited: boolean, failFirst = 0): Transport {
  let calls = 0;
  const request: EIP1193RequestFn = async (args) => {
    calls++;
    if (calls <= failFirst) throw new TimeoutError({ body: { method: args.method }, url: "local" });
    return "0x1" as never;
  };
  return () =>
    createTransport(
      { key: "local", name: "local", type: "local", request, retryCount: 0 },
      selfLimited ? { selfLimited: true } : {},
    );
}

async function timeRequests(transport: Transport, count: number): Promise<number> {
  const createRpc = await loadCreateRpc();
  const shared = common();
  const rpc = createRpc({
    common: shared.value,
    chain: { id: 1, name: "patch", rpc: transport, pollingInterval: 1_000 },
    concurrency: 64,
  });
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: count }, () => rpc.request({ method: "eth_blockNumber" })),
    );
    return performance.now() - started;
  } finally {
    shared.close();
  }
}

describe("the Ponder patch", () => {
  it(`is made for the installed Ponder (${PATCHED_VERSION})`, () => {
    const installed = (
      JSON.parse(readFileSync(join(PONDER, "package.json"), "utf8")) as {
        version: string;
      }
    ).version;
    expect(
      installed,
      `Ponder ${installed} is installed but patches/ponder+${PATCHED_VERSION}.patch was made for ${PATCHED_VERSION}: redo the patch`,
    ).toBe(PATCHED_VERSION);
    expect(existsSync(join(ROOT, "patches", `ponder+${installed}.patch`))).toBe(true);
    const source = readFileSync(join(PONDER, "dist", "esm", "rpc", "index.js"), "utf8");
    expect(source, "the patch is not applied: run `npx patch-package`").toContain(
      "transport.value?.selfLimited === true",
    );
    // The second part (test/indexer-backfill-groups.test.ts measures what it does).
    const historical = readFileSync(
      join(PONDER, "dist", "esm", "sync-historical", "index.js"),
      "utf8",
    );
    expect(historical, "the patch is not applied: run `npx patch-package`").toContain(
      "await insertGroup.add({",
    );
  });

  it("lets a self-limited transport past Ponder's 20 requests/s start", async () => {
    // 150 requests: Ponder's limiter (20/s, bursts to about 30) needs about 5 s for them;
    // the patched path about 1.
    const ms = await timeRequests(localTransport(true), 150);
    expect(ms).toBeLessThan(2_500);
  });

  it("keeps Ponder's limiter for every other transport (the patch changes nothing else)", async () => {
    const ms = await timeRequests(localTransport(false), 150);
    expect(ms).toBeGreaterThan(3_500);
  });

  it("does not throttle a self-limited transport after timeouts", async () => {
    // 40 timeouts would take Ponder's limit from 20 to its 3/s floor: 60 requests then need
    // over 15 s. Ponder still retries each failed request (its backoff starts at 125 ms).
    const ms = await timeRequests(localTransport(true, 40), 60);
    expect(ms).toBeLessThan(3_000);
  });
});
