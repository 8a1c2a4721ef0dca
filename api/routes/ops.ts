import { z } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import { Gauge } from "prom-client";
import type { ApiCommon } from "../context.js";
import { createIndexerLagProbe } from "../indexer-lag.js";
import type { ApiApp } from "./shared.js";

/**
 * Operational routes: liveness, readiness, Prometheus metrics, the OpenAPI document and a
 * readable reference page. Never rate limited, never authenticated, never revealing a
 * backend's address (backends are named by id).
 */
export function registerOpsRoutes(app: ApiApp, common: ApiCommon): void {
  const registry = app.openAPIRegistry;
  const minBackends =
    common.config.QUASAR_MIN_REPLICAS === 0
      ? common.backends.length
      : Math.min(common.config.QUASAR_MIN_REPLICAS, common.backends.length);
  // Issue 9: an indexer wedged behind the head must not look ready. Its lag is read from the
  // chain and Ponder's /status (same host, as `quasar start` runs them); unknown is not behind.
  const lagProbe = createIndexerLagProbe({
    config: common.config,
    indexerUrl: `http://127.0.0.1:${common.config.QUASAR_INDEXER_PORT}`,
  });
  new Gauge({
    name: "quasar_indexer_lag_blocks",
    help: "Blocks between each chain's head (its RPC) and the indexer's latest indexed block",
    labelNames: ["chain"],
    registers: [common.metrics.registry],
    async collect() {
      this.reset();
      for (const lag of await lagProbe.check()) {
        if (lag.lagBlocks !== null) this.set({ chain: String(lag.chainId) }, lag.lagBlocks);
      }
    },
  });

  registry.registerPath({
    method: "get",
    path: "/healthz",
    summary: "Liveness: the process answers",
    responses: {
      200: {
        description: "Alive",
        content: { "application/json": { schema: z.object({ ok: z.boolean() }) } },
      },
    },
  });
  app.get("/healthz", (c) => c.json({ ok: true }));

  registry.registerPath({
    method: "get",
    path: "/readyz",
    summary:
      "Readiness: the database and at least the minimum number of backends answer, and the indexer is within QUASAR_INDEXER_MAX_LAG_BLOCKS of every chain's head",
    responses: {
      200: { description: "Ready" },
      503: { description: "Not ready; the body says what is missing" },
    },
  });
  app.get("/readyz", async (c) => {
    const signal = AbortSignal.timeout(READY_DEADLINE_MS);
    const [lags, database, ...reachable] = await Promise.all([
      lagProbe.check(),
      withinDeadline(common.store.ping(), signal),
      ...common.backends.map((backend) => backend.ping(signal).catch(() => false)),
    ]);
    const backends = common.backends.map((backend, index) => ({
      id: backend.id,
      reachable: reachable[index] === true,
    }));
    const up = backends.filter((backend) => backend.reachable).length;
    // Uploads need the first backend; replication needs the minimum.
    const indexer = lags.map((lag) => ({
      chainId: lag.chainId,
      headBlock: lag.headBlock?.toString() ?? null,
      indexedBlock: lag.indexedBlock?.toString() ?? null,
      lagBlocks: lag.lagBlocks,
      behind: lag.behind,
    }));
    const ready =
      database &&
      up >= minBackends &&
      backends[0]?.reachable === true &&
      !lags.some((lag) => lag.behind);
    return c.json({ ready, database, minBackends, backends, indexer }, ready ? 200 : 503);
  });

  app.get("/metrics", async (c) =>
    c.body(await common.metrics.registry.metrics(), 200, {
      "content-type": common.metrics.registry.contentType,
    }),
  );

  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Quasar API",
      version: "1.0.0",
      description:
        "Optimistic pinning for dapps that record IPFS content on Ethereum. Quasar routes answer errors as `{error: {reason, details}}`; the Kubo mount (/kubo/api/v0) as `{Message, Code, Type}`.",
    },
  });

  // Scalar's reference page (its script comes from a CDN), and a self-contained page that
  // renders the same document on machines without internet access.
  app.get("/docs", Scalar({ url: "/openapi.json", pageTitle: "Quasar API" }));
  app.get("/docs/plain", (c) => c.html(REFERENCE_PAGE));
}

/**
 * Readiness answers within this bound whatever hangs behind it: a frozen database or a
 * backend that accepts connections but never answers counts as not ready (a load balancer's
 * probe typically gives up after 2 s, and a probe that hangs is no answer at all).
 */
const READY_DEADLINE_MS = 1_500;

/** `check`'s answer, or false once `signal` aborts first (the check keeps running, ignored). */
function withinDeadline(check: Promise<boolean>, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const onAbort = () => resolve(false);
    signal.addEventListener("abort", onAbort, { once: true });
    check.then(
      (value) => resolve(value),
      () => resolve(false),
    );
  });
}

/** A self-contained reference page: renders /openapi.json with no external script or style. */
const REFERENCE_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Quasar API</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:0 .3em}h2{margin-top:2rem}.m{display:inline-block;width:4rem;font-weight:bold}
.op{border-top:1px solid #ddd;padding:.6rem 0}.d{color:#444;margin:.2rem 0 0 4rem}</style></head>
<body><h1>Quasar API</h1><p id="intro"></p><div id="ops">Loading /openapi.json…</div>
<script>
fetch("/openapi.json").then(r=>r.json()).then(doc=>{
  const esc=s=>String(s??"").replace(/[&<>"]/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
  document.getElementById("intro").innerHTML=esc(doc.info.description);
  let html="";
  for(const [path,item] of Object.entries(doc.paths)){for(const [method,op] of Object.entries(item)){
    const params=(op.parameters||[]).map(p=>"<code>"+esc(p.name)+"</code>").join(" ");
    const codes=Object.keys(op.responses||{}).join(", ");
    html+='<div class="op"><span class="m">'+esc(method.toUpperCase())+"</span><code>"+esc(path)+"</code> "+esc(op.summary)
      +(op.description?'<div class="d">'+esc(op.description)+"</div>":"")
      +(params?'<div class="d">parameters: '+params+"</div>":"")+'<div class="d">answers: '+esc(codes)+"</div></div>";
  }}
  document.getElementById("ops").innerHTML=html;
});
</script></body></html>`;
