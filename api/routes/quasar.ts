import { z } from "@hono/zod-openapi";
import { CID } from "multiformats/cid";
import { parseJsonBytes, readAllLimited } from "../body.js";
import { backendHolding, readDagNode, startStream, toJsonValue } from "../content.js";
import type { ApiCommon } from "../context.js";
import { catQuery, dagGetQuery, dagPutQuery, parseInput } from "../schemas.js";
import { addMultipartUpload, putDagUpload, QUASAR_FILE_FIELDS } from "../upload.js";
import {
  type ApiApp,
  authenticateUpload,
  errorResponses,
  queryOf,
  requestSignal,
  requireJson,
} from "./shared.js";

/**
 * The original Quasar routes under /api/v0, as the Aragon client calls them:
 *
 *   POST /api/v0/add            multipart, file in field `entry`  → 201 text/plain CID
 *   POST /api/v0/dag/put        JSON body (the node)              → 201 text/plain CID
 *   GET  /api/v0/dag/get?arg=   CID[/path]                        → 200 {value, remainderPath}
 *   GET  /api/v0/cat?arg=       CID                               → 200 bytes (streamed)
 *   GET  /api/v0/ipfs-provider                                    → 200 {baseUrl, dagGetUrl, dagPutUrl}
 *
 * Kubo clients use the same commands with other formats (POST everywhere, field `file`,
 * JSON answers); they are served under /kubo/api/v0 (routes/kubo.ts), so neither format is
 * guessed from the request. Errors here are `{"error": {"reason", "details"}}`.
 */
export function registerQuasarRoutes(app: ApiApp, common: ApiCommon): void {
  const registry = app.openAPIRegistry;

  registry.registerPath({
    method: "post",
    path: "/api/v0/add",
    summary: "Upload a file (optimistic pin)",
    description:
      "Multipart body with the file in field `entry`. Stored and pinned on the first backend, recorded as an optimistic pin for QUASAR_PIN_TTL. Needs `Authorization: Bearer <key>` when QUASAR_API_KEYS is set.",
    request: {
      body: {
        content: {
          "multipart/form-data": {
            schema: z.object({ entry: z.string().openapi({ format: "binary" }) }),
          },
        },
      },
    },
    responses: {
      201: {
        description: "The CID, as text/plain",
        content: { "text/plain": { schema: z.string() } },
      },
      ...errorResponses,
    },
  });
  app.post("/api/v0/add", async (c) => {
    const caller = await authenticateUpload(c, common);
    const stored = await addMultipartUpload(common, c.req.raw, {
      fields: QUASAR_FILE_FIELDS,
      uploader: caller.keyId,
      signal: requestSignal(c),
    });
    // The CID as the backend built it: CIDv0 (Qm…) for Kubo's defaults, as the original answered.
    return c.text(stored.cid.toString(), 201);
  });

  registry.registerPath({
    method: "post",
    path: "/api/v0/dag/put",
    summary: "Store a JSON document as a DAG node (optimistic pin)",
    request: {
      query: dagPutQuery,
      body: { content: { "application/json": { schema: z.unknown() } } },
    },
    responses: {
      201: {
        description: "The CID, as text/plain",
        content: { "text/plain": { schema: z.string() } },
      },
      ...errorResponses,
    },
  });
  app.post("/api/v0/dag/put", async (c) => {
    const caller = await authenticateUpload(c, common);
    const query = parseInput(dagPutQuery, queryOf(c), "query");
    requireJson(c);
    const signal = requestSignal(c);
    const bytes = await readAllLimited(
      c.req.raw,
      common.config.QUASAR_MAX_JSON_BYTES,
      signal,
      common.config.QUASAR_BODY_IDLE_TIMEOUT,
    );
    const value = parseJsonBytes(bytes);
    const stored = await putDagUpload(common, value, {
      codec: query["store-codec"] ?? query.format ?? "dag-cbor",
      uploader: caller.keyId,
      signal,
      size: bytes.byteLength,
    });
    return c.text(stored.cid.toString(), 201);
  });

  registry.registerPath({
    method: "get",
    path: "/api/v0/dag/get",
    summary: "Read a DAG node",
    request: { query: dagGetQuery },
    responses: {
      200: {
        description: "The node",
        content: {
          "application/json": {
            schema: z.object({ value: z.unknown(), remainderPath: z.string() }),
          },
        },
      },
      404: { description: "No backend holds the CID, or the path does not exist" },
      ...errorResponses,
    },
  });
  app.get("/api/v0/dag/get", async (c) => {
    const { arg } = parseInput(dagGetQuery, queryOf(c), "query");
    const node = await readDagNode(common, CID.parse(arg.cid), arg.path, requestSignal(c));
    return c.json({ value: toJsonValue(node.value), remainderPath: node.remainderPath });
  });

  registry.registerPath({
    method: "get",
    path: "/api/v0/cat",
    summary: "Read a file's bytes (streamed)",
    request: { query: catQuery },
    responses: {
      200: {
        description: "The bytes",
        content: { "application/octet-stream": { schema: z.string() } },
      },
      404: { description: "No backend holds the CID" },
      ...errorResponses,
    },
  });
  app.get("/api/v0/cat", async (c) => {
    const { arg } = parseInput(catQuery, queryOf(c), "query");
    const cid = CID.parse(arg);
    const signal = requestSignal(c);
    const backend = await backendHolding(common, cid, signal);
    const stream = await startStream(backend.cat(cid, { signal }), (error) =>
      common.logger.warn({
        msg: "cat failed mid-stream",
        cid: arg,
        backend: backend.id,
        err: error,
      }),
    );
    return new Response(stream, {
      status: 200,
      headers: { "content-type": "application/octet-stream" },
    });
  });

  registry.registerPath({
    method: "get",
    path: "/api/v0/ipfs-provider",
    summary: "Where clients should read and write DAG nodes",
    description: "Always Quasar's own URLs; never a backend's address or token.",
    responses: {
      200: {
        description: "Provider description",
        content: {
          "application/json": {
            schema: z.object({ baseUrl: z.string(), dagGetUrl: z.string(), dagPutUrl: z.string() }),
          },
        },
      },
    },
  });
  app.get("/api/v0/ipfs-provider", (c) => {
    // createApp refused to build without QUASAR_PUBLIC_URL unless the listener is
    // loopback-only: only then may the request's own Host name the base URL.
    const base = common.config.QUASAR_PUBLIC_URL || new URL(c.req.url).origin;
    return c.json({
      baseUrl: `${base.replace(/\/+$/, "")}/api/v0/`,
      dagGetUrl: "dag/get?arg=",
      dagPutUrl: "dag/put",
    });
  });
}
