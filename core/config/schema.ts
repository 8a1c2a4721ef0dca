import { getAddress, isAddress } from "viem";
import { z } from "zod";
import { parseDurationMs } from "./duration.js";

/**
 * Quasar's whole configuration: one zod schema over environment variables, read once at
 * start by every process (indexer, reconciler, API, CLI). Side-effect free: Ponder executes
 * every file under src/, so nothing here reads the environment until `loadConfig` is called.
 *
 * Each entry carries its documentation (`describe`) so the README table and `quasar config
 * check` are generated from this file; `SECRET_SETTINGS` lists what must be masked.
 */

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDurationMs(text);
      if (ms === undefined || ms <= 0) {
        ctx.addIssue({
          code: "custom",
          message: `expected a positive duration such as "14d", "12h", "30s" or "500ms", got "${text}"`,
        });
        return z.NEVER;
      }
      return ms;
    });

const integer = (fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .default(String(fallback))
    .transform((text, ctx) => {
      const value = Number(text);
      if (
        !/^\s*-?\d+\s*$/.test(text) ||
        !Number.isSafeInteger(value) ||
        value < min ||
        value > max
      ) {
        ctx.addIssue({
          code: "custom",
          message: `expected a whole number from ${min} to ${max}, got "${text}"`,
        });
        return z.NEVER;
      }
      return value;
    });

const list = (fallback = "") =>
  z
    .string()
    .default(fallback)
    .transform((text) =>
      text
        .split(",")
        .map((item) => item.trim())
        .filter((item) => item.length > 0),
    );

const address = z
  .string()
  .refine((value) => isAddress(value, { strict: false }), {
    message: "expected a 20-byte hex address (0x followed by 40 hex digits)",
  })
  .transform((value) => getAddress(value).toLowerCase() as `0x${string}`);

const rpcUrl = z.url({ protocol: /^(https?|wss?)$/ });

/** One indexed chain: where to read logs and which registry decides which storage contracts count. */
export const chainSchema = z
  .object({
    id: z.number().int().positive(),
    /** Ponder's name for the chain; defaults to `chain<id>`. */
    name: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9_]*$/, "expected letters, digits and underscores")
      .optional(),
    /** One JSON-RPC URL, or several: the first is used while it answers, the others take over when it fails. */
    rpc: z.union([rpcUrl, z.array(rpcUrl).min(1, "expected at least one RPC URL")]),
    registry: address,
    startBlock: z.number().int().nonnegative().default(0),
    /**
     * Most JSON-RPC requests per second the indexer sends to this chain, over all its URLs
     * (a public endpoint's limit). Absent: no budget, for a node of one's own.
     */
    maxRequestsPerSecond: z.number().positive().max(100_000).optional(),
    /** Widest block range of one eth_getLogs (providers cap it); absent: Ponder adapts. */
    ethGetLogsBlockRange: z.number().int().positive().optional(),
    /**
     * Most requests sent together in one JSON-RPC batch over HTTP (requests issued within
     * the same moment). Absent or 1: no batching, which every endpoint accepts; a node of
     * one's own backfills fastest at about 25 (Ponder keeps 100 block fetches in flight, so
     * four batches run at once). Each request still counts against the budget.
     */
    rpcBatchSize: z.number().int().min(1).max(1_000).optional(),
  })
  // `rpc` stays the first (primary) URL so every reader of one URL keeps working;
  // `rpcUrls` lists them all, in order of preference.
  .transform(({ rpc, ...chain }) => {
    const rpcUrls = typeof rpc === "string" ? [rpc] : rpc;
    return { ...chain, rpc: rpcUrls[0] as string, rpcUrls };
  });
export type ChainConfig = z.output<typeof chainSchema> & { name: string };

/** anvil's first deployment from its first default account always lands at this address. */
export const LOCAL_REGISTRY_ADDRESS = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
const LOCAL_CHAINS = JSON.stringify([
  { id: 31337, rpc: "http://127.0.0.1:8545", registry: LOCAL_REGISTRY_ADDRESS, startBlock: 0 },
]);

const chains = z
  .string()
  .default(LOCAL_CHAINS)
  .transform((text, ctx) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      ctx.addIssue({
        code: "custom",
        message:
          'expected a JSON array such as [{"id":1,"rpc":"https://…","registry":"0x…","startBlock":0}]',
      });
      return z.NEVER;
    }
    const result = z.array(chainSchema).min(1).safeParse(parsed);
    if (!result.success) {
      for (const issue of result.error.issues) {
        ctx.addIssue({ code: "custom", message: `${issue.path.join(".")}: ${issue.message}` });
      }
      return z.NEVER;
    }
    const ids = new Set<number>();
    for (const chain of result.data) {
      if (ids.has(chain.id)) {
        ctx.addIssue({ code: "custom", message: `chain ${chain.id} is listed twice` });
        return z.NEVER;
      }
      ids.add(chain.id);
    }
    return result.data.map((chain) => ({ ...chain, name: chain.name ?? `chain${chain.id}` }));
  });

/** Dashboard views an operator may open to everyone (QUASAR_UI_PUBLIC); keys never. */
export const PUBLIC_UI_VIEWS = ["overview", "pin", "stuck", "backends"] as const;
export type PublicUiView = (typeof PUBLIC_UI_VIEWS)[number];

const schemaName = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((value) => /^[a-z_][a-z0-9_]{0,62}$/.test(value), {
      message: "expected a lowercase Postgres identifier (letters, digits, underscores)",
    });

const port = (fallback: number) => integer(fallback, 0, 65_535);

/** Whether a listen address only accepts connections from this machine. */
export function isLoopbackHost(host: string): boolean {
  const bare = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, "$1");
  return bare === "localhost" || bare === "::1" || /^127(\.\d{1,3}){3}$/.test(bare);
}

/**
 * Settings where an empty value means "none" rather than "unset, use the default":
 * `QUASAR_CORS_ORIGINS=` must not fall back to "*".
 */
export const EMPTY_MEANS_NONE: ReadonlySet<string> = new Set(["QUASAR_CORS_ORIGINS"]);

export const configSchema = z
  .object({
    DATABASE_URL: z
      .string()
      .default("postgresql://postgres@127.0.0.1:5432/postgres")
      .refine((value) => /^postgres(ql)?:\/\//.test(value), {
        message: "expected a postgres:// or postgresql:// connection string",
      })
      .describe("PostgreSQL connection string shared by every process."),
    QUASAR_DB_STATEMENT_TIMEOUT: duration("30s").describe(
      "Longest a database statement may run before it is cancelled; a frozen server is given up on 1 s later and the request answers 503.",
    ),
    QUASAR_DB_ACQUIRE_TIMEOUT: duration("5s").describe(
      "Longest wait for a database connection (from the pool or a new one) before failing with 503.",
    ),
    QUASAR_INDEXER_SCHEMA: schemaName("quasar_indexer").describe(
      "Postgres schema the indexer (Ponder) writes its event table to; the others read it.",
    ),
    QUASAR_RECONCILER_SCHEMA: schemaName("quasar").describe(
      "Postgres schema of the reconciler's own tables (optimistic pins, ledger, reconcile log).",
    ),
    QUASAR_CHAINS: chains.describe(
      "JSON array of chains: id, rpc (http/ws URL, or an array of them: fallbacks), registry address, startBlock, optional name, maxRequestsPerSecond (request budget over all URLs; absent: none), ethGetLogsBlockRange, rpcBatchSize (JSON-RPC batch over HTTP; absent: none). Default: local anvil 31337 at 127.0.0.1:8545 with the registry at anvil's first deployment address.",
    ),
    QUASAR_INDEXER_PORT: port(42069).describe(
      "Port of the indexer's status server (/ready, /status).",
    ),
    QUASAR_INDEXER_MAX_LAG_BLOCKS: integer(20, 1).describe(
      "The indexer counts as behind (not ready; restarted by the supervisor when it stays so) when the chain head is more than this many blocks ahead of it.",
    ),
    QUASAR_INDEXER_STUCK_AFTER: duration("2m").describe(
      "How long the indexer may stay behind by more than the lag without advancing before the supervisor restarts it.",
    ),
    QUASAR_PIN_TTL: duration("14d").describe(
      "How long an unconfirmed upload, or a demoted CID after a final Unregister, stays pinned.",
    ),
    QUASAR_BACKENDS: list("helia://.quasar/ipfs").describe(
      "Comma-separated storage backend connection strings (ipfs://, ipfs+http(s)://, helia://, cluster+http(s)://, psa+http(s)://).",
    ),
    QUASAR_MIN_REPLICAS: integer(0, 0, 1_000).describe(
      "Copies each desired CID must have (an IPFS Cluster counts each peer holding it, other backends one each); 0 means one on every configured backend.",
    ),
    QUASAR_RECONCILE_INTERVAL: duration("2s").describe(
      "Pause between incremental reconcile steps; work the API queues (an upload, a Pinning Service API request), a block the indexer commits with chain events in it, and an expiry (an upload's TTL) due sooner end the pause early, at most one step per 250 ms.",
    ),
    QUASAR_FULL_SWEEP_INTERVAL: duration("10m").describe(
      "Period of the full sweep that compares every backend's real pins with the desired set.",
    ),
    QUASAR_PIN_CONCURRENCY: integer(8, 1, 1_024).describe(
      "Concurrent pin/unpin commands per backend. On a shared node the look for another user's pin of the next CIDs runs ahead of them: up to as many read-only calls again.",
    ),
    QUASAR_PIN_INACTIVITY_TIMEOUT: duration("2m").describe(
      "A pin that makes no progress for this long is aborted and retried.",
    ),
    QUASAR_PIN_DEADLINE: duration("24h").describe(
      "After this long without success a CID is marked failed and only retried slowly.",
    ),
    QUASAR_RETRY_BASE: duration("5s").describe(
      "First retry delay; doubles per attempt, with jitter.",
    ),
    QUASAR_RETRY_MAX: duration("30m").describe(
      "Longest retry delay for a pin still within its deadline.",
    ),
    QUASAR_FAILED_RETRY_INTERVAL: duration("6h").describe("Retry period for CIDs marked failed."),
    QUASAR_METRICS_PORT: port(9464).describe(
      "Port of the reconciler's Prometheus /metrics (0 disables).",
    ),
    QUASAR_API_HOST: z.string().default("127.0.0.1").describe("Address the HTTP API listens on."),
    QUASAR_API_PORT: port(3000).describe("Port of the HTTP API."),
    QUASAR_PUBLIC_URL: z
      .string()
      .default("")
      .refine((value) => value === "" || URL.canParse(value), {
        message: "expected an absolute URL",
      })
      .describe(
        "Public base URL of the API, used in /ipfs-provider. Required unless QUASAR_API_HOST is a loopback address; then empty derives it from the request.",
      ),
    QUASAR_MAX_UPLOAD_BYTES: integer(1_073_741_824, 1).describe(
      "Largest upload accepted; larger ones are refused with 413 as soon as the limit is crossed.",
    ),
    QUASAR_MAX_JSON_BYTES: integer(1_048_576, 1).describe(
      "Largest JSON body accepted (dag/put etc.).",
    ),
    QUASAR_BODY_IDLE_TIMEOUT: duration("30s").describe(
      "A request body that sends nothing for this long is cut off (408).",
    ),
    QUASAR_MAX_UPLOADS_PER_CLIENT: integer(8, 0, 100_000).describe(
      "Concurrent uploads per API key or client address; more are refused with 429. 0 disables the cap.",
    ),
    QUASAR_API_KEYS: list().describe(
      "Bootstrap API keys (comma-separated bearer tokens) beside those made by `quasar keys create`; uploads need a key when either exists, the Pinning Service API always.",
    ),
    QUASAR_ADMIN_TOKEN: z
      .string()
      .default("")
      .describe("Bearer token for admin routes; empty disables them."),
    QUASAR_UI_PUBLIC: list()
      .transform((views, ctx) => {
        const unknown = views.filter(
          (view) => !(PUBLIC_UI_VIEWS as readonly string[]).includes(view),
        );
        if (unknown.length > 0) {
          ctx.addIssue({
            code: "custom",
            message: `expected a comma-separated list of ${PUBLIC_UI_VIEWS.join(", ")}, got "${unknown.join(",")}"`,
          });
          return z.NEVER;
        }
        return views as PublicUiView[];
      })
      .describe(
        `Dashboard views (/ui) shown without signing in, comma-separated: ${PUBLIC_UI_VIEWS.join(", ")}; empty shows none (the keys view always needs the admin token).`,
      ),
    QUASAR_UI_STUCK_AFTER: duration("10m").describe(
      "The dashboard's stuck view lists pins queued or pinning for longer than this (and every failed pin).",
    ),
    QUASAR_RATE_LIMIT: integer(100, 0).describe(
      "Requests per window per API key or client address; 0 disables the limit.",
    ),
    QUASAR_RATE_LIMIT_WINDOW: duration("15m").describe("Window of the rate limit."),
    QUASAR_CORS_ORIGINS: list("*").describe(
      "Comma-separated allowed CORS origins; * allows any; set but empty allows none.",
    ),
    QUASAR_LOG_LEVEL: z
      .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
      .default("info")
      .describe("pino log level."),
  })
  .superRefine((config, ctx) => {
    const message = publicUrlProblem(config);
    if (message) ctx.addIssue({ code: "custom", path: ["QUASAR_PUBLIC_URL"], message });
  });

/**
 * Behind a public listener the Host header is the client's to choose, so /ipfs-provider
 * must not build its URLs from it: QUASAR_PUBLIC_URL is then required.
 */
export function publicUrlProblem(config: {
  QUASAR_PUBLIC_URL: string;
  QUASAR_API_HOST: string;
}): string | undefined {
  if (config.QUASAR_PUBLIC_URL !== "" || isLoopbackHost(config.QUASAR_API_HOST)) return undefined;
  return `required when QUASAR_API_HOST ("${config.QUASAR_API_HOST}") is not a loopback address: set it to the URL clients reach the API at, e.g. https://quasar.example.org`;
}

export type QuasarConfig = z.output<typeof configSchema>;
export type SettingName = keyof z.input<typeof configSchema>;

/** Settings whose values are masked in logs, `config check` and every API answer. */
export const SECRET_SETTINGS: ReadonlySet<SettingName> = new Set<SettingName>([
  "DATABASE_URL",
  "QUASAR_CHAINS",
  "QUASAR_BACKENDS",
  "QUASAR_API_KEYS",
  "QUASAR_ADMIN_TOKEN",
]);
