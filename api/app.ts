import { randomUUID } from "node:crypto";
import { getConnInfo } from "@hono/node-server/conninfo";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { cors } from "hono/cors";
import { routePath } from "hono/route";
import type { Logger } from "pino";
import type { Backend } from "@/backends/backend.js";
import { ConfigError } from "@/core/config/errors.js";
import { publicUrlProblem, type QuasarConfig } from "@/core/config/schema.js";
import { createAdminGuard, createApiKeyring } from "./auth.js";
import type { ApiCommon, ApiEnv } from "./context.js";
import { createErrorHandler, errorResponse } from "./error-format.js";
import { RateLimitedError } from "./errors.js";
import { type ApiMetrics, createApiMetrics } from "./metrics.js";
import type { ApiStore } from "./ports.js";
import { createRateLimiter, type RateLimiter } from "./rate-limit.js";
import { registerContractRoutes } from "./routes/contracts.js";
import { registerKeyRoutes } from "./routes/keys.js";
import { registerKuboRoutes } from "./routes/kubo.js";
import { registerOpsRoutes } from "./routes/ops.js";
import { registerPinRoutes } from "./routes/pins.js";
import { registerPsaRoutes } from "./routes/psa.js";
import { registerQuasarRoutes } from "./routes/quasar.js";
import type { ApiApp } from "./routes/shared.js";
import { registerUiRoutes } from "./ui/routes.js";
import type { DashboardSource } from "./ui/source.js";
import { createUploadSlots } from "./upload-slots.js";

/** Everything the HTTP API needs; nothing is read from the environment or globals. */
export type CreateAppOptions = {
  config: QuasarConfig;
  /** Configured backends in order, already opened; uploads go to the first. */
  backends: readonly Backend[];
  /** Database port (api/store.ts builds it over the reconciler's tables and the read model). */
  store: ApiStore;
  logger: Logger;
  metrics?: ApiMetrics;
  /** Clock in ms since the epoch; tests move it. */
  now?: () => number;
  /**
   * The client address used for rate limiting when no valid API key is presented. Defaults to
   * the socket's remote address; behind a trusted proxy, pass a function reading its header.
   */
  clientAddress?: (c: Context<ApiEnv>) => string | undefined;
  /**
   * The rate limiter; main.ts passes the one shared by every API process (in PostgreSQL).
   * Defaults to counters in this process's memory, on the `now` clock.
   */
  rateLimiter?: RateLimiter;
  /** The operator dashboard's data (api/ui/source.ts); without it /ui is not served. */
  dashboard?: DashboardSource;
};

/**
 * Builds the Hono app: routes, validation, auth, rate limiting, CORS, metrics and the one
 * error handler. No server is started (main.ts does that), so tests call `app.request()`.
 *
 * Mounts:
 *   /api/v0/…        the original Quasar routes (Aragon client), pin status, storageContracts
 *   /kubo/api/v0/…   the Kubo RPC subset for stock kubo-rpc-client
 *   /psa/pins…       the IPFS Pinning Service API (`ipfs pin remote`)
 *   /healthz /readyz /metrics /openapi.json /docs
 *   /ui              the operator dashboard (when `dashboard` is given)
 */
export function createApp(options: CreateAppOptions): ApiApp {
  const { config, logger } = options;
  const publicUrl = publicUrlProblem(config);
  if (publicUrl) throw new ConfigError([{ setting: "QUASAR_PUBLIC_URL", message: publicUrl }]);
  const common: ApiCommon = {
    config,
    backends: options.backends,
    store: options.store,
    logger,
    metrics: options.metrics ?? createApiMetrics(),
    keyring: createApiKeyring(config.QUASAR_API_KEYS, {
      lookup: options.store.apiKeys,
      now: options.now ?? Date.now,
    }),
    admin: createAdminGuard(config.QUASAR_ADMIN_TOKEN),
    rateLimiter:
      options.rateLimiter ??
      createRateLimiter({
        limit: config.QUASAR_RATE_LIMIT,
        windowMs: config.QUASAR_RATE_LIMIT_WINDOW,
      }),
    now: options.now ?? Date.now,
  };
  const clientAddress = options.clientAddress ?? socketAddress;

  const app: ApiApp = new OpenAPIHono<ApiEnv>();

  app.use("*", async (c, next) => {
    const started = performance.now();
    const requestId = randomUUID();
    c.set("requestId", requestId);
    await next();
    c.header("x-request-id", requestId);
    const route = routePath(c) || "unmatched";
    const status = c.res.status;
    common.metrics.requests.inc({ method: c.req.method, route, status: String(status) });
    common.metrics.requestSeconds.observe(
      { method: c.req.method, route },
      (performance.now() - started) / 1000,
    );
    // Structured, and never the Authorization header or a key: the caller is its key id.
    logger.debug({
      msg: "request",
      requestId,
      method: c.req.method,
      path: c.req.path,
      status,
      ms: Math.round(performance.now() - started),
      caller: c.get("caller")?.keyId,
    });
  });

  const origins = config.QUASAR_CORS_ORIGINS;
  app.use(
    "*",
    cors({
      origin: origins.includes("*") ? "*" : [...origins],
      allowMethods: ["GET", "POST", "DELETE", "OPTIONS"],
      allowHeaders: ["Authorization", "Content-Type"],
      exposeHeaders: ["Retry-After", "X-Request-Id", "X-Stream-Output", "X-Chunked-Output"],
      maxAge: 600,
    }),
  );

  const clientOf = async (c: Context<ApiEnv>) => {
    const keyId = await common.keyring.identify(c.req.header("authorization"));
    return keyId ? `key:${keyId}` : `ip:${clientAddress(c) ?? "unknown"}`;
  };
  const limit = async (c: Context<ApiEnv>, next: () => Promise<void>) => {
    if (c.req.method === "OPTIONS") return next();
    const client = await clientOf(c);
    const decision = await common.rateLimiter.take(client, common.now());
    if (!decision.allowed) {
      common.metrics.rateLimited.inc();
      throw new RateLimitedError(decision.retryAfterSeconds);
    }
    await next();
  };
  app.use("/api/*", limit);
  app.use("/kubo/*", limit);
  app.use("/psa/*", limit);
  // Sign-in guesses are rate limited like API calls.
  app.use("/ui/login", limit);

  const uploadSlots = createUploadSlots(config.QUASAR_MAX_UPLOADS_PER_CLIENT);
  const oneSlot = async (c: Context<ApiEnv>, next: () => Promise<void>) => {
    if (c.req.method !== "POST") return next();
    const release = uploadSlots.acquire(await clientOf(c));
    try {
      await next();
    } finally {
      release();
    }
  };
  for (const path of UPLOAD_PATHS) app.use(path, oneSlot);

  registerOpsRoutes(app, common);
  registerQuasarRoutes(app, common);
  registerPinRoutes(app, common);
  registerContractRoutes(app, common);
  registerKuboRoutes(app, common);
  registerPsaRoutes(app, common);
  registerKeyRoutes(app, common);
  if (options.dashboard) registerUiRoutes(app, common, options.dashboard);

  app.notFound((c) =>
    errorResponse(c, 404, "NOT_FOUND", "not found", `no route ${c.req.method} ${c.req.path}`),
  );
  app.onError(createErrorHandler(logger));
  return app;
}

/** Routes that take an upload body: each holds one of its client's upload slots while it runs. */
const UPLOAD_PATHS = [
  "/api/v0/add",
  "/api/v0/dag/put",
  "/kubo/api/v0/add",
  "/kubo/api/v0/dag/put",
] as const;

function socketAddress(c: Context<ApiEnv>): string | undefined {
  try {
    return getConnInfo(c).remote.address;
  } catch {
    // app.request() in tests has no socket.
    return undefined;
  }
}
