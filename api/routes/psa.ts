import { randomUUID } from "node:crypto";
import { z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { describeError } from "@/core/errors.js";
import type { ReplicaRule } from "@/db/psa/index.js";
import type { Caller } from "../auth.js";
import { parseJsonBytes, readAllLimited } from "../body.js";
import type { ApiCommon, ApiEnv } from "../context.js";
import { InsufficientFundsError, NotFoundError } from "../errors.js";
import { createDelegates } from "../psa/delegates.js";
import { parseListQuery, parsePinInput } from "../psa/input.js";
import { renderPinStatus } from "../psa/render.js";
import { type ApiApp, queryOf, requestSignal } from "./shared.js";

/**
 * The IPFS Pinning Service API (spec v1.0.0) at `/psa`, so that
 * `ipfs pin remote service add quasar http://HOST:PORT/psa KEY` works:
 *
 *   GET    /psa/pins                 the key's requests, newest first, filtered
 *   POST   /psa/pins                 a new request → 202 PinStatus
 *   GET    /psa/pins/{requestid}     one request
 *   POST   /psa/pins/{requestid}     replace: a new request (new id), the old one gone, atomically
 *   DELETE /psa/pins/{requestid}     → 202
 *
 * Every call needs an API key (401 without); each key sees only its own requests (another
 * key's requestid is 404). A request holds its CID in the desired set until deleted (the `psa`
 * reason); its status is derived from the ledger (db/psa/status.ts).
 */
export const PSA_MOUNT = "/psa";

const pinStatusSchema = z
  .object({
    requestid: z.string(),
    status: z.enum(["queued", "pinning", "pinned", "failed"]),
    created: z.string(),
    pin: z.object({
      cid: z.string(),
      name: z.string().optional(),
      origins: z.array(z.string()),
      meta: z.record(z.string(), z.string()),
    }),
    delegates: z.array(z.string()),
    info: z.record(z.string(), z.string()),
  })
  .openapi("PsaPinStatus");

const psaErrors = {
  400: { description: "Bad CID, name or parameter: `{error: {reason, details}}`" },
  401: { description: "Missing or invalid API key" },
  404: { description: "No such request for this key" },
  409: { description: "The key's quota is exhausted (INSUFFICIENT_FUNDS)" },
  429: { description: "Rate limited; see Retry-After" },
} as const;

/** A pin's JSON body: small documents, well under the API's JSON limit. */
const MAX_PIN_BODY_BYTES = 1_048_576;
/** How long dialling a request's origins may take (best effort, not awaited by the client). */
const CONNECT_TIMEOUT_MS = 10_000;
/** Request ids are UUIDs: anything else is unknown without asking the database. */
const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function registerPsaRoutes(app: ApiApp, common: ApiCommon): void {
  const registry = app.openAPIRegistry;
  const delegates = createDelegates({
    backends: common.backends,
    logger: common.logger,
    now: common.now,
  });
  const rule = (): ReplicaRule => {
    const backendIds = common.backends.map((backend) => backend.id);
    const min = common.config.QUASAR_MIN_REPLICAS;
    return {
      backendIds,
      required: min === 0 ? backendIds.length : Math.min(min, backendIds.length),
    };
  };
  const caller = async (c: Context<ApiEnv>): Promise<Caller> => {
    const found = await common.keyring.authenticate(c.req.header("authorization"), {
      always: true,
    });
    c.set("caller", found);
    return found;
  };
  const requestIdOf = (c: Context<ApiEnv>): string => {
    const id = c.req.param("requestid") ?? "";
    if (!REQUEST_ID.test(id)) throw new NotFoundError("no pin request with this requestid");
    return id;
  };
  const readPin = async (c: Context<ApiEnv>) =>
    parsePinInput(
      parseJsonBytes(
        await readAllLimited(
          c.req.raw,
          Math.min(MAX_PIN_BODY_BYTES, common.config.QUASAR_MAX_JSON_BYTES),
          requestSignal(c),
        ),
      ),
    );
  const dialOrigins = (origins: readonly string[]) => {
    if (origins.length === 0) return;
    for (const backend of common.backends) {
      backend.pins
        .connect?.(origins, { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) })
        .catch((error: unknown) =>
          common.logger.debug({
            msg: "origins not dialled",
            backend: backend.id,
            err: describeError(error),
          }),
        );
    }
  };
  const create = async (c: Context<ApiEnv>, replaces?: string) => {
    const who = await caller(c);
    const pin = await readPin(c);
    const outcome = await common.store.psa.create(rule(), {
      requestid: randomUUID(),
      keyId: who.keyId,
      ...pin,
      now: new Date(common.now()),
      quota: who.quota ?? { pins: null, bytes: null },
      ...(replaces !== undefined ? { replaces } : {}),
    });
    if ("refused" in outcome) {
      if (outcome.refused === "not_found") {
        throw new NotFoundError("no pin request with this requestid");
      }
      throw new InsufficientFundsError(outcome.details);
    }
    dialOrigins(pin.origins);
    return c.json(renderPinStatus(outcome.created, await delegates.get()), 202);
  };

  registry.registerPath({
    method: "get",
    path: `${PSA_MOUNT}/pins`,
    summary: "Pinning Service API: list the key's pin requests",
    tags: ["Pinning Service API"],
    responses: {
      200: {
        description: "A page, newest first, and the count of every match",
        content: {
          "application/json": {
            schema: z.object({ count: z.number(), results: z.array(pinStatusSchema) }),
          },
        },
      },
      ...psaErrors,
    },
  });
  app.get(`${PSA_MOUNT}/pins`, async (c) => {
    const who = await caller(c);
    const query = parseListQuery(queryOf(c));
    const page = await common.store.psa.list(rule(), {
      keyId: who.keyId,
      match: query.match,
      statuses: query.statuses,
      limit: query.limit,
      ...(query.cids ? { cids: query.cids } : {}),
      ...(query.name !== undefined ? { name: query.name } : {}),
      ...(query.before ? { before: query.before } : {}),
      ...(query.after ? { after: query.after } : {}),
      ...(query.meta ? { meta: query.meta } : {}),
    });
    const list = await delegates.get();
    return c.json({
      count: page.count,
      results: page.results.map((record) => renderPinStatus(record, list)),
    });
  });

  registry.registerPath({
    method: "post",
    path: `${PSA_MOUNT}/pins`,
    summary: "Pinning Service API: add a pin request",
    tags: ["Pinning Service API"],
    responses: {
      202: {
        description: "Accepted",
        content: { "application/json": { schema: pinStatusSchema } },
      },
      ...psaErrors,
    },
  });
  app.post(`${PSA_MOUNT}/pins`, (c) => create(c));

  registry.registerPath({
    method: "get",
    path: `${PSA_MOUNT}/pins/{requestid}`,
    summary: "Pinning Service API: one pin request",
    tags: ["Pinning Service API"],
    request: { params: z.object({ requestid: z.string() }) },
    responses: {
      200: { description: "Status", content: { "application/json": { schema: pinStatusSchema } } },
      ...psaErrors,
    },
  });
  app.get(`${PSA_MOUNT}/pins/:requestid`, async (c) => {
    const who = await caller(c);
    const record = await common.store.psa.get(rule(), who.keyId, requestIdOf(c));
    if (!record) throw new NotFoundError("no pin request with this requestid");
    return c.json(renderPinStatus(record, await delegates.get()));
  });

  registry.registerPath({
    method: "post",
    path: `${PSA_MOUNT}/pins/{requestid}`,
    summary: "Pinning Service API: replace a pin request (new requestid; the old one is removed)",
    tags: ["Pinning Service API"],
    request: { params: z.object({ requestid: z.string() }) },
    responses: {
      202: {
        description: "Accepted",
        content: { "application/json": { schema: pinStatusSchema } },
      },
      ...psaErrors,
    },
  });
  app.post(`${PSA_MOUNT}/pins/:requestid`, async (c) => {
    await caller(c);
    return create(c, requestIdOf(c));
  });

  registry.registerPath({
    method: "delete",
    path: `${PSA_MOUNT}/pins/{requestid}`,
    summary: "Pinning Service API: remove a pin request",
    tags: ["Pinning Service API"],
    request: { params: z.object({ requestid: z.string() }) },
    responses: { 202: { description: "Removed" }, ...psaErrors },
  });
  app.delete(`${PSA_MOUNT}/pins/:requestid`, async (c) => {
    const who = await caller(c);
    if (!(await common.store.psa.remove(who.keyId, requestIdOf(c)))) {
      throw new NotFoundError("no pin request with this requestid");
    }
    return c.body(null, 202);
  });
}
