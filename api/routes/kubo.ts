import { z } from "@hono/zod-openapi";
import * as dagCbor from "@ipld/dag-cbor";
import { CID } from "multiformats/cid";
import { parseKuboAddParams } from "@/backends/add-options.js";
import { readAllLimited } from "../body.js";
import {
  asReadError,
  backendHolding,
  encodeDagJson,
  readDagNode,
  startStream,
} from "../content.js";
import type { ApiCommon } from "../context.js";
import { KUBO_MOUNT } from "../error-format.js";
import { InvalidArgumentError, MissingFileError } from "../errors.js";
import { addKuboEntries } from "../kubo-add.js";
import { decodeKuboDagInput } from "../kubo-dag-input.js";
import { KUBO_ID, kuboVersion } from "../kubo-identity.js";
import { multipartBoundary, parseMultipart } from "../multipart.js";
import {
  kuboAddQuery,
  kuboBlockQuery,
  kuboCatQuery,
  kuboDagGetQuery,
  kuboDagPutQuery,
  parseInput,
} from "../schemas.js";
import { KUBO_FILE_FIELDS, putDagUpload } from "../upload.js";
import { type ApiApp, authenticateUpload, queryOf, requestSignal } from "./shared.js";

/**
 * The Kubo RPC subset a stock kubo-rpc-client needs for add, dag.put, dag.get, cat, block.get,
 * block.stat, version and id,
 * mounted at /kubo/api/v0 (use `create({ url: "<quasar>/kubo/api/v0" })`).
 *
 * Why a separate mount rather than sharing /api/v0: the two formats clash on the same paths
 * (/add answers text for Aragon but NDJSON for Kubo; Aragon GETs /cat and /dag/get, Kubo
 * POSTs everything). Guessing by field name or method would make a malformed Aragon request
 * silently answered in Kubo's format; a mount point keeps each contract exact.
 *
 * Kubo formats: every command is POST; files in multipart field `file`; answers
 * `{Name, Hash, Size}` (add, one NDJSON line) and `{Cid: {"/": …}}` (dag/put); errors
 * `{Message, Code, Type: "error"}` with a 4xx status for bad input.
 *
 * test/kubo-compat.test.ts sends every route's requests to a real Kubo too and compares the
 * answers byte for byte. What the mount does not implement is refused by name (400), never
 * answered differently. Where Kubo answers 500 to the client's own mistake (a negative
 * offset, a path that does not exist) the mount answers 400 with Kubo's message, and 404 for
 * content no backend holds: a 5xx from Quasar means Quasar failed (alerts, client retries).
 */
export function registerKuboRoutes(app: ApiApp, common: ApiCommon): void {
  const base = `${KUBO_MOUNT}/api/v0`;
  const registry = app.openAPIRegistry;
  const kuboError = { description: '`{Message, Code, Type: "error"}`' };

  registry.registerPath({
    method: "post",
    path: `${base}/add`,
    summary: "Kubo add: files and directories (`ipfs add -r` multipart), Kubo's CIDs",
    request: { query: kuboAddQuery },
    responses: {
      200: {
        description: "One NDJSON line per file and directory",
        content: {
          "application/json": {
            schema: z.object({ Name: z.string(), Hash: z.string(), Size: z.string() }),
          },
        },
      },
      400: kuboError,
    },
  });
  app.post(`${base}/add`, async (c) => {
    const caller = await authenticateUpload(c, common);
    const raw = queryOf(c);
    parseInput(kuboAddQuery, raw, "query");
    const params = parseKuboAddParams(raw);
    if (!params.ok) throw new InvalidArgumentError(params.message);
    const lines = await addKuboEntries(common, c.req.raw, {
      params: params.value,
      uploader: caller.keyId,
      signal: requestSignal(c),
    });
    const body = lines.map((line) => `${JSON.stringify(line)}\n`).join("");
    return c.body(body, 200, { "content-type": "application/json", "x-chunked-output": "1" });
  });

  registry.registerPath({
    method: "post",
    path: `${base}/dag/put`,
    summary: "Kubo dag/put: store one encoded node (field `file`)",
    request: { query: kuboDagPutQuery },
    responses: {
      200: {
        description: "The CID",
        content: {
          "application/json": { schema: z.object({ Cid: z.object({ "/": z.string() }) }) },
        },
      },
      400: kuboError,
    },
  });
  app.post(`${base}/dag/put`, async (c) => {
    const caller = await authenticateUpload(c, common);
    const query = parseInput(kuboDagPutQuery, queryOf(c), "query");
    const signal = requestSignal(c);
    const boundary = multipartBoundary(c.req.header("content-type"));
    // A DAG node is small: read its part whole, bounded by the JSON limit.
    const body = await readAllLimited(
      c.req.raw,
      common.config.QUASAR_MAX_JSON_BYTES,
      signal,
      common.config.QUASAR_BODY_IDLE_TIMEOUT,
    );
    let encoded: Uint8Array | undefined;
    for await (const part of parseMultipart(oneChunk(body), boundary)) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of part.body) chunks.push(chunk);
      if (part.name === "file" || part.name.startsWith("file?") || part.name.startsWith("file-")) {
        // Kubo stores each file part as a node of its own and answers one line each.
        if (encoded !== undefined) {
          throw new InvalidArgumentError(
            "several nodes in one dag/put are not supported by Quasar: send one request per node",
          );
        }
        encoded = Buffer.concat(chunks);
      }
    }
    if (encoded === undefined) throw new MissingFileError(KUBO_FILE_FIELDS);
    const value = decodeKuboDagInput(encoded, query["input-codec"]);
    const stored = await putDagUpload(common, value, {
      codec: query["store-codec"],
      uploader: caller.keyId,
      signal,
      size: encoded.byteLength,
    });
    // Kubo's answer: one JSON line per node.
    return c.body(`${JSON.stringify({ Cid: { "/": stored.cid.toString() } })}\n`, 200, {
      "content-type": "application/json",
      "x-chunked-output": "1",
    });
  });

  registry.registerPath({
    method: "post",
    path: `${base}/cat`,
    summary: "Kubo cat: a file's bytes (streamed)",
    request: { query: kuboCatQuery },
    responses: { 200: { description: "The bytes" }, 400: kuboError, 404: kuboError },
  });
  app.post(`${base}/cat`, async (c) => {
    const query = parseInput(kuboCatQuery, queryOf(c), "query");
    const cid = CID.parse(query.arg);
    const signal = requestSignal(c);
    const backend = await backendHolding(common, cid, signal);
    const stream = await startStream(
      backend.cat(cid, { offset: query.offset, length: query.length, signal }),
      (error) => common.logger.warn({ msg: "cat failed mid-stream", cid: query.arg, err: error }),
    );
    return new Response(stream, {
      status: 200,
      headers: { "content-type": "text/plain", "x-stream-output": "1" },
    });
  });

  registry.registerPath({
    method: "post",
    path: `${base}/block/get`,
    summary: "Kubo block/get: a block's raw bytes (kubo-rpc-client's dag.get uses it)",
    request: { query: kuboBlockQuery },
    responses: { 200: { description: "The block" }, 400: kuboError, 404: kuboError },
  });
  app.post(`${base}/block/get`, async (c) => {
    const query = parseInput(kuboBlockQuery, queryOf(c), "query");
    const bytes = await readBlock(common, CID.parse(query.arg), requestSignal(c));
    return c.body(new Uint8Array(bytes), 200, { "content-type": "text/plain" });
  });

  registry.registerPath({
    method: "post",
    path: `${base}/block/stat`,
    summary: "Kubo block/stat: a block's CID and size",
    request: { query: kuboBlockQuery },
    responses: {
      200: {
        description: "`Key` is the CID as given (a CIDv0 stays Qm…), `Size` the block's bytes",
        content: {
          "application/json": { schema: z.object({ Key: z.string(), Size: z.number() }) },
        },
      },
      400: kuboError,
      404: kuboError,
    },
  });
  app.post(`${base}/block/stat`, async (c) => {
    const query = parseInput(kuboBlockQuery, queryOf(c), "query");
    // Kubo answers a CIDv0 as given (Qm…) and any CIDv1 in base32, as the parsed query holds it.
    const raw = stripIpfs(queryOf(c).arg ?? "");
    const asGiven = CID.parse(/^(Qm|1)/.test(raw) ? raw : query.arg);
    const bytes = await readBlock(common, asGiven, requestSignal(c));
    return c.body(`${JSON.stringify({ Key: asGiven.toString(), Size: bytes.byteLength })}\n`, 200, {
      "content-type": "application/json",
    });
  });

  registry.registerPath({
    method: "post",
    path: `${base}/dag/get`,
    summary: "Kubo dag/get: a node as dag-json",
    request: { query: kuboDagGetQuery },
    responses: { 200: { description: "The node, dag-json" }, 400: kuboError, 404: kuboError },
  });
  app.post(`${base}/dag/get`, async (c) => {
    const query = parseInput(kuboDagGetQuery, queryOf(c), "query");
    const node = await readDagNode(
      common,
      CID.parse(query.arg.cid),
      query.arg.path,
      requestSignal(c),
    );
    const bytes =
      query["output-codec"] === "dag-cbor" ? dagCbor.encode(node.value) : encodeDagJson(node.value);
    // Kubo streams dag/get as text/plain whatever the codec.
    return c.body(new Uint8Array(bytes), 200, {
      "content-type": "text/plain",
      "x-stream-output": "1",
    });
  });

  registry.registerPath({
    method: "post",
    path: `${base}/version`,
    summary: "Kubo version: the Kubo RPC version this mount follows, marked as Quasar",
    responses: { 200: { description: "`{Version, Commit, Repo, System, Golang}`" } },
  });
  app.post(`${base}/version`, (c) => c.json(kuboVersion()));

  registry.registerPath({
    method: "post",
    path: `${base}/id`,
    summary: "Kubo id: a placeholder identity (Quasar is not a peer)",
    responses: { 200: { description: "`{ID, PublicKey, Addresses, AgentVersion, Protocols}`" } },
  });
  app.post(`${base}/id`, (c) => {
    if (queryOf(c).arg !== undefined) {
      throw new InvalidArgumentError(
        "id of another peer is not supported: Quasar is not an IPFS node and looks up no peers",
      );
    }
    return c.json(KUBO_ID);
  });
}

function stripIpfs(arg: string): string {
  return (arg.startsWith("/ipfs/") ? arg.slice("/ipfs/".length) : arg).replace(/\/+$/, "");
}

/** A block's bytes from the first backend that holds it. */
async function readBlock(common: ApiCommon, cid: CID, signal: AbortSignal): Promise<Uint8Array> {
  const backend = await backendHolding(common, cid, signal);
  try {
    return await backend.getBlock(cid, { signal });
  } catch (error) {
    throw asReadError(error);
  }
}

async function* oneChunk(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}
