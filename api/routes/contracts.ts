import { z } from "@hono/zod-openapi";
import { parseJsonBytes, readAllLimited } from "../body.js";
import type { ApiCommon } from "../context.js";
import { InvalidArgumentError } from "../errors.js";
import type { ContractRegistration } from "../ports.js";
import { parseInput, registerContractBody } from "../schemas.js";
import { type ApiApp, errorResponses, requestSignal, requireJson } from "./shared.js";

/**
 * Storage contracts that count.
 *
 *   GET  /api/v0/storageContracts   every registered contract, on-chain and off-chain, with
 *                                   where its registration came from
 *   POST /api/v0/storageContracts   admin only: `{contractAddress, chainId?}` → 201 new,
 *                                   200 already registered off-chain, 400 bad address
 *
 * An off-chain registration is appended (never updated) so the desired-set derivation and
 * the auditors replay it like a Register event.
 */
export function renderRegistration(registration: ContractRegistration): Record<string, unknown> {
  return {
    chainId: registration.chainId,
    address: registration.contract,
    source: registration.source,
    ...(registration.blockNumber !== undefined
      ? { blockNumber: registration.blockNumber.toString() }
      : {}),
    ...(registration.eventId ? { eventId: registration.eventId } : {}),
    ...(registration.registeredBy ? { registeredBy: registration.registeredBy } : {}),
    ...(registration.registeredAt ? { registeredAt: registration.registeredAt.toISOString() } : {}),
  };
}

const registrationSchema = z
  .object({
    chainId: z.number(),
    address: z.string(),
    source: z.enum(["chain", "offchain"]),
    blockNumber: z.string().optional(),
    eventId: z.string().optional(),
    registeredBy: z.string().optional(),
    registeredAt: z.string().optional(),
  })
  .openapi("ContractRegistration");

export function registerContractRoutes(app: ApiApp, common: ApiCommon): void {
  const registry = app.openAPIRegistry;
  const chainIds = common.config.QUASAR_CHAINS.map((chain) => chain.id);

  registry.registerPath({
    method: "get",
    path: "/api/v0/storageContracts",
    summary: "Registered storage contracts and where each registration came from",
    responses: {
      200: {
        description: "The list",
        content: { "application/json": { schema: z.array(registrationSchema) } },
      },
    },
  });
  app.get("/api/v0/storageContracts", async (c) => {
    const list = await common.store.listContracts();
    return c.json(list.map(renderRegistration));
  });

  registry.registerPath({
    method: "post",
    path: "/api/v0/storageContracts",
    summary: "Register a storage contract off-chain (admin)",
    description:
      "Needs `Authorization: Bearer <QUASAR_ADMIN_TOKEN>`; disabled (403) when the token is unset.",
    request: { body: { content: { "application/json": { schema: registerContractBody } } } },
    responses: {
      200: { description: "Already registered off-chain" },
      201: { description: "Registered" },
      403: { description: "Admin routes are disabled" },
      ...errorResponses,
    },
  });
  app.post("/api/v0/storageContracts", async (c) => {
    common.admin.check(c.req.header("authorization"));
    requireJson(c);
    const bytes = await readAllLimited(
      c.req.raw,
      common.config.QUASAR_MAX_JSON_BYTES,
      requestSignal(c),
      common.config.QUASAR_BODY_IDLE_TIMEOUT,
    );
    const body = parseInput(registerContractBody, parseJsonBytes(bytes), "body");
    let chainId = body.chainId;
    if (chainId === undefined) {
      if (chainIds.length !== 1) {
        throw new InvalidArgumentError(`body.chainId: required, one of ${chainIds.join(", ")}`);
      }
      chainId = chainIds[0]!;
    }
    if (!chainIds.includes(chainId)) {
      throw new InvalidArgumentError(
        `body.chainId: ${chainId} is not a configured chain (${chainIds.join(", ")})`,
      );
    }
    const outcome = await common.store.registerContract({
      chainId,
      contract: body.contractAddress,
      actor: "admin",
      now: new Date(common.now()),
    });
    common.logger.info({
      msg: "storage contract registered off-chain",
      chainId,
      contract: body.contractAddress,
      outcome,
    });
    return c.json(
      {
        chainId,
        address: body.contractAddress,
        source: "offchain",
        created: outcome === "created",
      },
      outcome === "created" ? 201 : 200,
    );
  });
}
