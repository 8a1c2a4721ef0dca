import { describe, expect, it } from "vitest";
import { formatDurationMs, parseDurationMs } from "./duration.js";
import { ConfigError } from "./errors.js";
import { loadConfig } from "./load.js";
import { LOCAL_REGISTRY_ADDRESS } from "./schema.js";

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError)
      return error.problems.map((p) => `${p.setting}: ${p.message}`);
    throw error;
  }
  throw new Error("expected loadConfig to fail");
}

describe("loadConfig", () => {
  it("runs on embedded defaults with nothing set", () => {
    const config = loadConfig({});
    expect(config.QUASAR_PIN_TTL).toBe(14 * 86_400_000);
    expect(config.QUASAR_BACKENDS).toEqual(["helia://.quasar/ipfs"]);
    expect(config.QUASAR_CHAINS).toEqual([
      {
        id: 31337,
        name: "chain31337",
        rpc: "http://127.0.0.1:8545",
        rpcUrls: ["http://127.0.0.1:8545"],
        registry: LOCAL_REGISTRY_ADDRESS,
        startBlock: 0,
      },
    ]);
    expect(config.QUASAR_INDEXER_MAX_LAG_BLOCKS).toBe(20);
    expect(config.QUASAR_MAX_UPLOAD_BYTES).toBe(1024 ** 3);
    expect(config.QUASAR_API_KEYS).toEqual([]);
    expect(config.QUASAR_MIN_REPLICAS).toBe(0);
  });

  it("treats empty strings as unset", () => {
    expect(loadConfig({ QUASAR_PIN_TTL: "", QUASAR_API_PORT: "" }).QUASAR_API_PORT).toBe(3000);
  });

  it("QUASAR_CORS_ORIGINS set but empty allows no origin; unset allows any", () => {
    expect(loadConfig({ QUASAR_CORS_ORIGINS: "" }).QUASAR_CORS_ORIGINS).toEqual([]);
    expect(loadConfig({}).QUASAR_CORS_ORIGINS).toEqual(["*"]);
  });

  it("has database, body and upload-concurrency limits, in units of their names", () => {
    const config = loadConfig({});
    expect(config.QUASAR_DB_STATEMENT_TIMEOUT).toBe(30_000);
    expect(config.QUASAR_DB_ACQUIRE_TIMEOUT).toBe(5_000);
    expect(config.QUASAR_BODY_IDLE_TIMEOUT).toBe(30_000);
    expect(config.QUASAR_MAX_UPLOADS_PER_CLIENT).toBe(8);
    const set = loadConfig({
      QUASAR_DB_STATEMENT_TIMEOUT: "2s",
      QUASAR_BODY_IDLE_TIMEOUT: "500ms",
    });
    expect(set.QUASAR_DB_STATEMENT_TIMEOUT).toBe(2_000);
    expect(set.QUASAR_BODY_IDLE_TIMEOUT).toBe(500);
    expect(problemsOf({ QUASAR_DB_ACQUIRE_TIMEOUT: "soon" })[0]).toMatch(
      /^QUASAR_DB_ACQUIRE_TIMEOUT: expected a positive duration/,
    );
  });

  it("requires QUASAR_PUBLIC_URL unless the API listens on loopback only", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]) {
      expect(loadConfig({ QUASAR_API_HOST: host }).QUASAR_PUBLIC_URL).toBe("");
    }
    expect(problemsOf({ QUASAR_API_HOST: "0.0.0.0" })).toEqual([
      expect.stringMatching(
        /^QUASAR_PUBLIC_URL: required when QUASAR_API_HOST \("0\.0\.0\.0"\) is not a loopback address/,
      ),
    ]);
    expect(
      loadConfig({ QUASAR_API_HOST: "0.0.0.0", QUASAR_PUBLIC_URL: "https://q.example" })
        .QUASAR_PUBLIC_URL,
    ).toBe("https://q.example");
  });

  it("parses lists, durations and chains", () => {
    const config = loadConfig({
      QUASAR_BACKENDS: " ipfs://127.0.0.1:5001 , helia:///tmp/x ,",
      QUASAR_PIN_TTL: "36h",
      QUASAR_CHAINS: JSON.stringify([
        {
          id: 1,
          name: "mainnet",
          rpc: "https://rpc.example/key",
          registry: "0xAbCdEf0123456789aBcDeF0123456789ABCDEF01",
          startBlock: 9,
        },
        { id: 10, rpc: "wss://op.example", registry: `0x${"1".repeat(40)}` },
      ]),
    });
    expect(config.QUASAR_BACKENDS).toEqual(["ipfs://127.0.0.1:5001", "helia:///tmp/x"]);
    expect(config.QUASAR_PIN_TTL).toBe(36 * 3_600_000);
    expect(config.QUASAR_CHAINS.map((c) => [c.name, c.registry, c.startBlock])).toEqual([
      ["mainnet", "0xabcdef0123456789abcdef0123456789abcdef01", 9],
      ["chain10", `0x${"1".repeat(40)}`, 0],
    ]);
  });

  it("takes several RPC URLs, a request budget and a getLogs range per chain", () => {
    const [chain] = loadConfig({
      QUASAR_CHAINS: JSON.stringify([
        {
          id: 1,
          rpc: ["https://a.example/key", "wss://b.example"],
          registry: `0x${"1".repeat(40)}`,
          maxRequestsPerSecond: 25,
          ethGetLogsBlockRange: 2_000,
          rpcBatchSize: 100,
        },
      ]),
    }).QUASAR_CHAINS;
    expect(chain).toMatchObject({
      rpc: "https://a.example/key",
      rpcUrls: ["https://a.example/key", "wss://b.example"],
      maxRequestsPerSecond: 25,
      ethGetLogsBlockRange: 2_000,
      rpcBatchSize: 100,
    });
  });

  it.each([
    [{ rpc: [] }, /QUASAR_CHAINS: 0\.rpc/],
    [{ rpc: ["http://a", "ftp://b"] }, /QUASAR_CHAINS: 0\.rpc/],
    [{ maxRequestsPerSecond: 0 }, /QUASAR_CHAINS: 0\.maxRequestsPerSecond/],
    [{ maxRequestsPerSecond: "25" }, /QUASAR_CHAINS: 0\.maxRequestsPerSecond/],
    [{ ethGetLogsBlockRange: 1.5 }, /QUASAR_CHAINS: 0\.ethGetLogsBlockRange/],
    [{ rpcBatchSize: 0 }, /QUASAR_CHAINS: 0\.rpcBatchSize/],
    [{ rpcBatchSize: 5_000 }, /QUASAR_CHAINS: 0\.rpcBatchSize/],
  ])("rejects the chain setting %o", (fields, pattern) => {
    const chain = { id: 1, rpc: "http://x", registry: `0x${"1".repeat(40)}`, ...fields };
    expect(problemsOf({ QUASAR_CHAINS: JSON.stringify([chain]) }).join("\n")).toMatch(pattern);
  });

  it.each([
    [{ QUASAR_PIN_TTL: "soon" }, /QUASAR_PIN_TTL: expected a positive duration.*"soon"/],
    [{ QUASAR_PIN_TTL: "0s" }, /QUASAR_PIN_TTL: expected a positive duration/],
    [
      { QUASAR_API_PORT: "70000" },
      /QUASAR_API_PORT: expected a whole number from 0 to 65535, got "70000"/,
    ],
    [{ QUASAR_PIN_CONCURRENCY: "1.5" }, /QUASAR_PIN_CONCURRENCY: expected a whole number/],
    [{ QUASAR_CHAINS: "{not json" }, /QUASAR_CHAINS: expected a JSON array/],
    [{ QUASAR_CHAINS: "[]" }, /QUASAR_CHAINS: /],
    [
      { QUASAR_CHAINS: JSON.stringify([{ id: 1, rpc: "http://x", registry: "0x12" }]) },
      /QUASAR_CHAINS: 0\.registry: expected a 20-byte hex address/,
    ],
    [
      {
        QUASAR_CHAINS: JSON.stringify([{ id: 1, rpc: "ftp://x", registry: `0x${"1".repeat(40)}` }]),
      },
      /QUASAR_CHAINS: 0\.rpc/,
    ],
    [
      {
        QUASAR_CHAINS: JSON.stringify([
          { id: 1, rpc: "http://x", registry: `0x${"1".repeat(40)}` },
          { id: 1, rpc: "http://y", registry: `0x${"2".repeat(40)}` },
        ]),
      },
      /chain 1 is listed twice/,
    ],
    [{ DATABASE_URL: "mysql://x" }, /DATABASE_URL: expected a postgres:\/\//],
    [{ QUASAR_LOG_LEVEL: "loud" }, /QUASAR_LOG_LEVEL/],
    [{ QUASAR_INDEXER_MAX_LAG_BLOCKS: "0" }, /QUASAR_INDEXER_MAX_LAG_BLOCKS: expected a whole/],
    [
      { QUASAR_RECONCILER_SCHEMA: "Bad-Name" },
      /QUASAR_RECONCILER_SCHEMA: expected a lowercase Postgres identifier/,
    ],
  ])("rejects %o with a message naming the setting", (env, pattern) => {
    expect(problemsOf(env).join("\n")).toMatch(pattern);
  });

  it("never echoes a secret setting's value", () => {
    const secret = "postgres-with-password";
    const message = problemsOf({ DATABASE_URL: `mysql://user:${secret}@host/db` }).join("\n");
    expect(message).not.toContain(secret);
  });

  it("reports every bad setting at once", () => {
    expect(problemsOf({ QUASAR_PIN_TTL: "x", QUASAR_API_PORT: "-1" })).toHaveLength(2);
  });
});

describe("durations", () => {
  it.each([
    ["14d", 1_209_600_000],
    ["1.5h", 5_400_000],
    ["250ms", 250],
    ["250", 250],
    ["2w", 1_209_600_000],
  ])("parses %s", (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(["", "d", "-1s", "1y", "1e3"])("rejects %j", (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });

  it("formats in the largest exact unit", () => {
    expect(formatDurationMs(1_209_600_000)).toBe("2w");
    expect(formatDurationMs(90_000)).toBe("90s");
    expect(formatDurationMs(1_500)).toBe("1500ms");
  });
});
