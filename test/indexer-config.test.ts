/**
 * The indexer's chain settings as an operator sees them in `quasar config check`: several
 * RPC URLs, a request budget and a getLogs range, validated, with every URL's secret masked.
 */
import { describe, expect, it } from "vitest";
import { checkConfig } from "@/cli/commands/config.js";
import { MASK } from "@/cli/mask.js";

const KEY = "abcdefghijklmnopqrstuvwxyz012345";
const chains = (fields: Record<string, unknown>) =>
  JSON.stringify([{ id: 1, registry: `0x${"1".repeat(40)}`, ...fields }]);

describe("quasar config check: chain settings", () => {
  it("shows several URLs, the budget and the range, each URL masked", () => {
    const report = checkConfig(
      {
        QUASAR_CHAINS: chains({
          rpc: [`https://eth.example/v2/${KEY}`, `wss://user:${KEY}@ws.example`],
          maxRequestsPerSecond: 25,
          ethGetLogsBlockRange: 2000,
          rpcBatchSize: 100,
        }),
      },
      {},
    );
    expect(report.ok).toBe(true);
    const value = report.settings.find((s) => s.name === "QUASAR_CHAINS")?.value ?? "";
    expect(value).not.toContain(KEY);
    expect(JSON.parse(value)).toEqual([
      expect.objectContaining({
        rpc: [`https://eth.example/v2/${MASK}`, `wss://user:${MASK}@ws.example/`],
        maxRequestsPerSecond: 25,
        ethGetLogsBlockRange: 2000,
        rpcBatchSize: 100,
      }),
    ]);
  });

  it("names a bad budget and still masks the URLs", () => {
    const report = checkConfig(
      {
        QUASAR_CHAINS: chains({ rpc: [`https://eth.example/v2/${KEY}`], maxRequestsPerSecond: -1 }),
      },
      {},
    );
    expect(report.ok).toBe(false);
    const chain = report.settings.find((s) => s.name === "QUASAR_CHAINS");
    expect(chain?.problem).toMatch(/0\.maxRequestsPerSecond/);
    expect(JSON.stringify(report)).not.toContain(KEY);
  });

  it("masks an rpc of an unexpected shape entirely", () => {
    const report = checkConfig({ QUASAR_CHAINS: chains({ rpc: { url: KEY } }) }, {});
    expect(JSON.stringify(report)).not.toContain(KEY);
  });
});
