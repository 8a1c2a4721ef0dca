import { z } from "@hono/zod-openapi";
import { reasonToJson } from "@/core/desired/reasons.js";
import type { ApiCommon } from "../context.js";
import type { BackendPinState, PinReason } from "../ports.js";
import { parseInput, pinListQuery, pinParams } from "../schemas.js";
import { type ApiApp, errorResponses, queryOf } from "./shared.js";

/**
 * Pin status: why a CID is desired (from the desired store) and what each backend holds
 * (from the ledger, labelled by backend id, never by URL).
 *
 *   GET /api/v0/pins/{cid}                         one CID
 *   GET /api/v0/pins?status=&reason=&backend=&cursor=&limit=   a page, in CID order
 */

/** JSON form of a reason: the desired store's own JSON form (dates ISO, block numbers decimal). */
export function renderReason(reason: PinReason): Record<string, unknown> {
  return reasonToJson(reason);
}

export function renderBackend(state: BackendPinState): Record<string, unknown> {
  return {
    backend: state.backendId,
    status: state.status,
    attempts: state.attempts,
    lastError: state.lastError,
    updatedAt: state.updatedAt.toISOString(),
  };
}

const reasonSchema = z
  .object({
    kind: z.enum(["optimistic", "confirmed", "pending", "demoted", "psa"]),
    requests: z
      .number()
      .optional()
      .openapi({ description: "psa: live Pinning Service API requests naming the CID" }),
    expiresAt: z
      .string()
      .optional()
      .openapi({ description: "optimistic: when the upload's TTL ends" }),
    until: z.string().optional().openapi({ description: "demoted: kept until then" }),
    unregisteredAt: z.string().optional(),
    unregisterSource: z.enum(["chain", "offchain"]).optional(),
    unregisterId: z.string().optional(),
    eventId: z.string().optional(),
    chainId: z.number().optional(),
    contract: z.string().optional(),
    transactionHash: z.string().optional(),
    blockNumber: z.string().optional(),
    confirmationsLeft: z.number().optional(),
  })
  .openapi("PinReason");
const backendSchema = z
  .object({
    backend: z.string(),
    status: z.string(),
    attempts: z.number(),
    lastError: z.string().nullable(),
    updatedAt: z.string(),
  })
  .openapi("BackendPinStatus");
const pinSchema = z
  .object({
    cid: z.string(),
    desired: z.boolean(),
    reasons: z.array(reasonSchema),
    backends: z.array(backendSchema),
  })
  .openapi("PinStatus");

export function registerPinRoutes(app: ApiApp, common: ApiCommon): void {
  const registry = app.openAPIRegistry;

  registry.registerPath({
    method: "get",
    path: "/api/v0/pins/{cid}",
    summary: "Why a CID is pinned, and its status on each backend",
    request: { params: pinParams },
    responses: {
      200: { description: "Status", content: { "application/json": { schema: pinSchema } } },
      ...errorResponses,
    },
  });
  app.get("/api/v0/pins/:cid", async (c) => {
    const { cid } = parseInput(pinParams, { cid: c.req.param("cid") }, "path");
    const [reasons, backends] = await Promise.all([
      common.store.reasonsFor(cid),
      common.store.backendStates(cid),
    ]);
    return c.json({
      cid,
      desired: reasons.length > 0,
      reasons: reasons.map(renderReason),
      backends: backends.map(renderBackend),
    });
  });

  registry.registerPath({
    method: "get",
    path: "/api/v0/pins",
    summary: "List pins with filters and cursor pagination",
    request: { query: pinListQuery },
    responses: {
      200: {
        description: "A page",
        content: {
          "application/json": {
            schema: z.object({ items: z.array(pinSchema), nextCursor: z.string().optional() }),
          },
        },
      },
      ...errorResponses,
    },
  });
  app.get("/api/v0/pins", async (c) => {
    const query = parseInput(pinListQuery, queryOf(c), "query");
    const page = await common.store.listPins({
      status: query.status,
      reason: query.reason,
      backend: query.backend,
      after: query.cursor,
      limit: query.limit,
    });
    return c.json({
      items: page.items.map((item) => ({
        cid: item.cid,
        desired: item.reasons.length > 0,
        reasons: item.reasons.map(renderReason),
        backends: item.backends.map(renderBackend),
      })),
      ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
    });
  });
}
