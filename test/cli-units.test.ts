import { Command } from "commander";
import { describe, expect, it } from "vitest";
import { PIN_HASH_TOPIC, REGISTER_TOPIC, UNREGISTER_TOPIC } from "@/audit/chain-logs.js";
import { eventIdOf } from "@/audit/event-id.js";
import { ponderFinalityDepth } from "@/audit/finality.js";
import { csvField, entriesToCsv, replayToJson } from "@/audit/output.js";
import { replayDesiredSet } from "@/audit/replay.js";
import { checkConfig } from "@/cli/commands/config.js";
import { parseDevEnv } from "@/cli/dev-env.js";
import { MASK, maskSetting, maskUrl } from "@/cli/mask.js";
import { restartDelayMs } from "@/cli/runtime/supervisor.js";
import {
  addSettingOptions,
  flagNameOf,
  resolveConfig,
  resolveSettings,
  settingFlagsFrom,
  settingInfo,
} from "@/cli/settings.js";
import { formatTable } from "@/cli/table.js";
import { ConfigError } from "@/core/config/errors.js";
import type { DesiredEntry } from "@/core/desired/reasons.js";
import type { ChainEvent, Hex } from "@/src/events.js";

// Ponder's own encoders, which its package does not export: loaded by path to check ours.
const ponderUtils = "../node_modules/ponder/dist/esm/utils";
const { encodeCheckpoint, EVENT_TYPES } = (await import(
  `${ponderUtils}/checkpoint.js`
)) as typeof import("@/node_modules/ponder/dist/types/utils/checkpoint.js");
const { getFinalityBlockCount } = (await import(
  `${ponderUtils}/finality.js`
)) as typeof import("@/node_modules/ponder/dist/types/utils/finality.js");

/** Parses argv with the setting options the way `quasar start` does. */
function parseFlags(argv: string[]) {
  const command = addSettingOptions(new Command("start").exitOverride());
  command.parse(argv, { from: "user" });
  return settingFlagsFrom(command.opts());
}

describe("flags → settings", () => {
  it("derives flag names from the setting names", () => {
    expect(flagNameOf("QUASAR_PIN_TTL")).toBe("pin-ttl");
    expect(flagNameOf("DATABASE_URL")).toBe("database-url");
    expect(flagNameOf("QUASAR_BACKENDS")).toBe("backend");
  });

  it("maps flags onto settings; --backend repeats into QUASAR_BACKENDS", () => {
    const flags = parseFlags([
      "--pin-ttl",
      "3d",
      "--backend",
      "ipfs://a:5001",
      "--backend",
      "helia://.x",
      "--api-port",
      "8080",
    ]);
    expect(flags).toEqual({
      QUASAR_PIN_TTL: "3d",
      QUASAR_BACKENDS: "ipfs://a:5001,helia://.x",
      QUASAR_API_PORT: "8080",
    });
    const { config, sources } = resolveConfig(
      { QUASAR_API_PORT: "9000", QUASAR_LOG_LEVEL: "warn" },
      flags,
    );
    expect(config.QUASAR_PIN_TTL).toBe(3 * 86_400_000);
    expect(config.QUASAR_BACKENDS).toEqual(["ipfs://a:5001", "helia://.x"]);
    // A flag beats the environment, the environment beats the default.
    expect(config.QUASAR_API_PORT).toBe(8080);
    expect(sources.QUASAR_API_PORT).toBe("flag");
    expect(sources.QUASAR_LOG_LEVEL).toBe("env");
    expect(sources.QUASAR_RETRY_BASE).toBe("default");
  });

  it("offers no flag for tokens (argv is visible to every user)", () => {
    expect(() => parseFlags(["--admin-token", "secret"])).toThrow();
    expect(() => parseFlags(["--api-keys", "a,b"])).toThrow();
  });

  it("a bad flag value is a ConfigError naming the setting", () => {
    const flags = parseFlags(["--pin-ttl", "forever"]);
    try {
      resolveConfig({}, flags);
      expect.unreachable("resolveConfig accepted a bad TTL");
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toContain("QUASAR_PIN_TTL");
      expect((error as ConfigError).message).toContain("forever");
    }
  });

  it("reads each setting's raw default and description from the schema", () => {
    expect(settingInfo("QUASAR_PIN_TTL").defaultValue).toBe("14d");
    expect(settingInfo("QUASAR_API_PORT").defaultValue).toBe("3000");
    expect(settingInfo("QUASAR_PIN_TTL").description).toMatch(/stays pinned/);
    expect(resolveSettings({}).raw.QUASAR_BACKENDS).toBe("helia://.quasar/ipfs");
  });
});

describe("masking", () => {
  it("hides passwords, tokens in query strings and provider keys in paths", () => {
    expect(maskUrl("postgresql://quasar:hunter2@db.example:5432/quasar")).toBe(
      `postgresql://quasar:${MASK}@db.example:5432/quasar`,
    );
    const infura = maskUrl("https://mainnet.infura.io/v3/0123456789abcdef0123456789abcdef");
    expect(infura).not.toContain("0123456789abcdef");
    expect(infura).toContain("mainnet.infura.io/v3/");
    expect(maskUrl("ipfs+https://node.example:5001?token=s3cret")).not.toContain("s3cret");
  });

  it("masks every secret setting and leaves the others alone", () => {
    expect(maskSetting("QUASAR_ADMIN_TOKEN", "top-secret")).toBe(MASK);
    expect(maskSetting("QUASAR_API_KEYS", "k1,k2,k3")).toBe(`${MASK} (3 values)`);
    const chains = maskSetting(
      "QUASAR_CHAINS",
      JSON.stringify([
        { id: 1, rpc: "https://eth.example/v2/abcdefghijklmnopqrstuvwxyz", registry: "0x0" },
      ]),
    );
    expect(chains).not.toContain("abcdefghijklmnop");
    expect(chains).toContain('"id":1');
    expect(maskSetting("QUASAR_BACKENDS", "helia://.quasar/ipfs,ipfs://u:pw@h:5001")).toBe(
      `helia://.quasar/ipfs,ipfs://u:${MASK}@h:5001`,
    );
    expect(maskSetting("QUASAR_PIN_TTL", "14d")).toBe("14d");
  });

  it("config check reports sources, masks secrets and names a bad setting", () => {
    const good = checkConfig(
      { QUASAR_ADMIN_TOKEN: "admin-secret", DATABASE_URL: "postgres://u:pw@h/db" },
      {
        pinTtl: "2d",
      },
    );
    expect(good.ok).toBe(true);
    const byName = new Map(good.settings.map((setting) => [setting.name, setting]));
    expect(byName.get("QUASAR_PIN_TTL")).toMatchObject({ source: "flag", value: "2d" });
    expect(byName.get("QUASAR_ADMIN_TOKEN")).toMatchObject({ source: "env", value: MASK });
    expect(byName.get("QUASAR_RETRY_MAX")).toMatchObject({ source: "default", value: "30m" });
    expect(JSON.stringify(good)).not.toContain("admin-secret");
    expect(JSON.stringify(good)).not.toContain(":pw@");

    const bad = checkConfig({ QUASAR_API_PORT: "70000" }, {});
    expect(bad.ok).toBe(false);
    const problem = bad.settings.find((setting) => setting.problem !== undefined);
    expect(problem?.name).toBe("QUASAR_API_PORT");
    expect(problem?.problem).toContain("70000");
  });
});

describe("auditors' own encodings agree with Ponder's", () => {
  it("event ids are Ponder's checkpoints", () => {
    const position = {
      blockTimestamp: 1_700_000_123n,
      chainId: 31337,
      blockNumber: 4242n,
      transactionIndex: 7,
      logIndex: 13,
    };
    expect(eventIdOf(position)).toBe(
      encodeCheckpoint({
        blockTimestamp: position.blockTimestamp,
        chainId: BigInt(position.chainId),
        blockNumber: position.blockNumber,
        transactionIndex: BigInt(position.transactionIndex),
        eventType: EVENT_TYPES.logs,
        eventIndex: BigInt(position.logIndex),
      }),
    );
  });

  it("the finality depth is Ponder's for every chain it names", () => {
    for (const id of [1, 5, 11155111, 137, 42161, 10, 8453, 31337, 123456789]) {
      expect(ponderFinalityDepth(id)).toBe(getFinalityBlockCount({ chain: { id } as never }));
    }
  });

  it("the event topics are the original Quasar's", () => {
    expect(PIN_HASH_TOPIC).toBe(
      "0x6ac5d58c9f1fa0cd3c0efff23b49c6f231e09070e80bb5a8ec87014724a841fd",
    );
    expect(REGISTER_TOPIC).toBe(
      "0xeeda149c76076b34d4b9d8896c2f7efc0d33d1c7b53ea3c5db490d64613f603a",
    );
    expect(UNREGISTER_TOPIC).toBe(
      "0x1a9a87235a10fa2f6c7079baa2546a99fac817e63099fe89535f08b9aaa76af7",
    );
  });
});

describe("audit output", () => {
  const contract = "0x00000000000000000000000000000000000000aa" as Hex;
  const entries: DesiredEntry[] = [
    {
      cid: "bafkreia",
      reasons: [
        {
          kind: "confirmed",
          chainId: 1,
          contract,
          transactionHash: "0x01",
          blockNumber: 10n,
          eventId: "e1",
        },
        { kind: "optimistic", expiresAt: new Date("2030-01-01T00:00:00Z") },
      ],
      nextChangeAt: null,
    },
  ];

  it("writes one CSV row per reason, quoting what needs quoting", () => {
    expect(entriesToCsv(entries)).toBe(
      [
        "cid,kind,chain_id,contract,block_number,transaction_hash,until",
        `bafkreia,confirmed,1,${contract},10,0x01,`,
        "bafkreia,optimistic,,,,,2030-01-01T00:00:00.000Z",
        "",
      ].join("\n"),
    );
    expect(csvField('a,"b"')).toBe('"a,""b"""');
    expect(csvField("plain")).toBe("plain");
  });

  it("replays events into a JSON document with a digest", () => {
    const registry = "0x00000000000000000000000000000000000000bb" as Hex;
    const event = (id: number, block: bigint, rest: Partial<ChainEvent>): ChainEvent => ({
      id: eventIdOf({
        blockTimestamp: 1000n + block,
        chainId: 5,
        blockNumber: block,
        transactionIndex: 0,
        logIndex: id,
      }),
      chainId: 5,
      blockNumber: block,
      blockHash: "0xbb",
      blockTimestamp: 1000n + block,
      transactionHash: `0x${block.toString(16)}` as Hex,
      logIndex: id,
      contract: registry,
      kind: "register",
      subject: null,
      rawCid: null,
      cid: null,
      invalidReason: null,
      ...rest,
    });
    const cid = "bafkreiefguoqizjvu7zyjvne6liyjadfdpenpn3owssadb3im7vo5eahju";
    const events = [
      event(0, 1n, { kind: "register", subject: contract }),
      event(0, 2n, { kind: "pin_hash", contract, rawCid: cid, cid }),
      event(1, 2n, { kind: "pin_hash", contract, rawCid: "nope", cid: null, invalidReason: "x" }),
    ];
    const now = new Date("2030-01-01T00:00:00Z");
    const final = replayDesiredSet({ chainId: 5, events, finalizedBlock: 100n, now, ttlMs: 1000 });
    const json = replayToJson(final, "chain");
    expect(json.cids).toBe(1);
    expect(json.entries[0]?.cid).toBe(cid);
    expect(json.entries[0]?.reasons[0]?.kind).toBe("confirmed");
    expect(json.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    // As of block 1 the PinHash has not happened: nothing is desired, and the digest differs.
    const before = replayDesiredSet({
      chainId: 5,
      events,
      finalizedBlock: 100n,
      toBlock: 1n,
      now,
      ttlMs: 1000,
    });
    expect(before.entries).toEqual([]);
    expect(before.digest.digest).not.toBe(final.digest.digest);
  });
});

describe("small helpers", () => {
  it("restart delays double per crash, within jitter, up to the cap", () => {
    const fixed = () => 0.5; // no jitter
    expect(restartDelayMs(1, 1000, 60_000, fixed)).toBe(1000);
    expect(restartDelayMs(2, 1000, 60_000, fixed)).toBe(2000);
    expect(restartDelayMs(5, 1000, 60_000, fixed)).toBe(16_000);
    expect(restartDelayMs(20, 1000, 60_000, fixed)).toBe(60_000);
    expect(restartDelayMs(1, 1000, 60_000, () => 0)).toBe(800);
    expect(restartDelayMs(1, 1000, 60_000, () => 0.999_999)).toBe(1200);
  });

  it("parses .quasar/dev.env, JSON values included", () => {
    expect(parseDevEnv('# c\nA=1\nQUASAR_CHAINS=[{"id":1,"rpc":"http://x=y"}]\n\nbad\n')).toEqual({
      A: "1",
      QUASAR_CHAINS: '[{"id":1,"rpc":"http://x=y"}]',
    });
  });

  it("formats aligned tables", () => {
    expect(
      formatTable(
        ["A", "LONG"],
        [
          ["xyz", "1"],
          ["q", "22"],
        ],
      ),
    ).toBe("A    LONG\nxyz  1\nq    22");
  });
});
