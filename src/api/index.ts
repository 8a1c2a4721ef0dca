import { Hono } from "hono";

/**
 * Ponder's own HTTP entry (it requires this file). Ponder serves /health, /ready, /status
 * and /metrics itself; Quasar's HTTP API is a separate process, so nothing is added here.
 */
const app = new Hono();

export default app;
