import type { Logger } from "pino";
import type { Backend } from "@/backends/backend.js";
import type { QuasarConfig } from "@/core/config/schema.js";
import type { AdminGuard, ApiKeyring, Caller } from "./auth.js";
import type { ApiMetrics } from "./metrics.js";
import type { ApiStore } from "./ports.js";
import type { RateLimiter } from "./rate-limit.js";

/**
 * The services every route shares, built once by createApp and passed down (never imported
 * as globals), in the spirit of Ponder's `common` bundle.
 */
export type ApiCommon = {
  config: QuasarConfig;
  /** Configured backends in order; uploads go to the first. */
  backends: readonly Backend[];
  store: ApiStore;
  logger: Logger;
  metrics: ApiMetrics;
  keyring: ApiKeyring;
  admin: AdminGuard;
  rateLimiter: RateLimiter;
  /** Time source (tests move it); defaults to Date.now. */
  now: () => number;
};

/** Per-request values set by middleware. */
export type ApiEnv = {
  Variables: {
    requestId: string;
    /** Set by the upload routes once the API key is checked. */
    caller?: Caller;
  };
};
