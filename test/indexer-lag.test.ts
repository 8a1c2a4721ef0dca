/**
 * Issue 9.1: while the indexer trails the chain head by more than
 * QUASAR_INDEXER_MAX_LAG_BLOCKS, the API's /readyz says so (503 with the lag), /metrics has
 * quasar_indexer_lag_blocks per chain, and the supervisor's health check of the indexer
 * fails (stuck: behind and not moving). The fault is real: a proxy between Ponder and anvil
 * stops answering (a black hole on the path to the node) while anvil keeps mining.
 */
import { afterAll, beforeAll, expect, test } from "vitest";
import { indexerHealth } from "@/cli/commands/start.js";
import { loadConfig } from "@/core/config/load.js";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";
import { type Anvil, deployContracts, startAnvil } from "./harness/anvil.js";
import { type PonderProcess, startPonder, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";
import { type RpcProxy, startRpcProxy } from "./harness/rpc-proxy.js";

const MAX_LAG = 3;

let anvil: Anvil;
let proxy: RpcProxy;
let db: TestSchema;
let ponder: PonderProcess;
let api: ApiFixture;
let env: Record<string, string>;
let chainId: number;

type Readiness = {
  ready: boolean;
  indexer: { chainId: number; lagBlocks: number | null; behind: boolean }[];
};

async function readiness(): Promise<{ status: number; body: Readiness }> {
  const response = await api.app.request("/readyz");
  return { status: response.status, body: (await response.json()) as Readiness };
}

async function until<T>(
  what: string,
  attempt: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const result = await attempt();
    if (result !== undefined) return result;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

beforeAll(async () => {
  chainId = uniqueChainId();
  anvil = await startAnvil({ chainId, blockTime: 1 });
  db = await createTestSchema("lag");
  const { registry } = await deployContracts(anvil);
  proxy = await startRpcProxy(anvil.rpcUrl);
  ponder = await startPonder({
    databaseUrl: db.databaseUrl,
    schema: db.schema,
    chains: [{ id: chainId, rpc: proxy.url, registry }],
  });
  // The API (and the health check) read the head from anvil itself, the indexed block from Ponder.
  env = {
    QUASAR_CHAINS: JSON.stringify([{ id: chainId, rpc: anvil.rpcUrl, registry }]),
    QUASAR_INDEXER_PORT: String(ponder.port),
    QUASAR_INDEXER_MAX_LAG_BLOCKS: String(MAX_LAG),
  };
  api = await createApiFixture({ env });
}, 180_000);

afterAll(async () => {
  await api?.close();
  await ponder?.stop();
  await proxy?.close();
  await anvil?.stop();
  await db?.drop();
});

test("readiness, metrics and the supervisor's health check follow the indexer's lag", async () => {
  const health = indexerHealth(loadConfig(env));
  await until("ready with the indexer at the head", async () => {
    const { status, body } = await readiness();
    return status === 200 && body.indexer[0]?.lagBlocks !== null ? body : undefined;
  });
  expect(await health()).toBe(true);

  proxy.hold();
  const behind = await until("readiness to report the indexer behind", async () => {
    const { status, body } = await readiness();
    return status === 503 && body.indexer[0]?.behind ? body : undefined;
  });
  expect(behind.indexer[0]).toMatchObject({ chainId, behind: true });
  expect(behind.indexer[0]?.lagBlocks ?? 0).toBeGreaterThan(MAX_LAG);
  const metrics = await (await api.app.request("/metrics")).text();
  const gauge = new RegExp(`quasar_indexer_lag_blocks\\{chain="${chainId}"\\} (\\d+)`).exec(
    metrics,
  );
  expect(Number(gauge?.[1])).toBeGreaterThan(MAX_LAG);
  // Stuck: behind and the indexed block did not move between two checks.
  await health();
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  expect(await health()).toBe(false);

  proxy.release();
  await until(
    "readiness again once the node answers",
    async () => ((await readiness()).status === 200 ? true : undefined),
    60_000,
  );
  expect(await health()).toBe(true);
}, 240_000);
