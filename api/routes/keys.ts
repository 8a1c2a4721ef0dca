import { z } from "@hono/zod-openapi";
import type { ApiCommon } from "../context.js";
import { type ApiApp, errorResponses } from "./shared.js";

/**
 *   GET /api/v0/keys   admin only: every API key's label, quotas, usage and times (never a
 *                      secret), including QUASAR_API_KEYS' bootstrap keys that hold requests.
 */
const keySchema = z
  .object({
    id: z.string(),
    label: z.string(),
    revoked: z.boolean(),
    quota: z.object({ pins: z.number().nullable(), bytes: z.number().nullable() }),
    requests: z.number(),
    bytes: z.number(),
    createdAt: z.string().nullable(),
    lastUsedAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .openapi("ApiKeyUsage");

export function registerKeyRoutes(app: ApiApp, common: ApiCommon): void {
  app.openAPIRegistry.registerPath({
    method: "get",
    path: "/api/v0/keys",
    summary: "Every API key's usage (admin)",
    responses: {
      200: {
        description: "The keys",
        content: { "application/json": { schema: z.array(keySchema) } },
      },
      ...errorResponses,
    },
  });
  app.get("/api/v0/keys", async (c) => {
    common.admin.check(c.req.header("authorization"));
    const keys = await common.store.apiKeys.list();
    return c.json(
      keys.map((key) => ({
        id: key.id,
        label: key.label,
        revoked: key.revoked,
        quota: key.quota,
        requests: key.requests,
        bytes: key.bytes,
        createdAt: key.createdAt.getTime() === 0 ? null : key.createdAt.toISOString(),
        lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
        revokedAt: key.revokedAt?.toISOString() ?? null,
      })),
    );
  });
}
