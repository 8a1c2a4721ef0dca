import { readFileSync } from "node:fs";
import type { Context } from "hono";
import type { ApiEnv } from "../context.js";
import type { ApiApp } from "../routes/shared.js";

/**
 * The dashboard's static parts, shipped with the source and read once at start (nothing is
 * built), and the headers every /ui answer carries.
 */
export function registerUiAssets(app: ApiApp): void {
  app.use("/ui", securityHeaders);
  app.use("/ui/*", securityHeaders);
  for (const [name, asset] of Object.entries(ASSETS)) {
    app.get(`/ui/assets/${name}`, (c) =>
      c.body(asset.body, 200, { "content-type": asset.type, ...ASSET_CACHE }),
    );
  }
}

const ASSET_CACHE = { "cache-control": "public, max-age=300" };

const read = (name: string) => readFileSync(new URL(`./assets/${name}`, import.meta.url), "utf8");
const ASSETS: Record<string, { body: string; type: string }> = {
  "ui.css": { body: read("ui.css"), type: "text/css; charset=utf-8" },
  "live.js": { body: read("live.js"), type: "text/javascript; charset=utf-8" },
  "icon.svg": { body: read("icon.svg"), type: "image/svg+xml" },
};

/** No inline script or style, no framing, no referrer to other sites, nothing cached but the assets. */
async function securityHeaders(c: Context<ApiEnv>, next: () => Promise<void>): Promise<void> {
  await next();
  c.header(
    "content-security-policy",
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  );
  c.header("x-content-type-options", "nosniff");
  c.header("x-frame-options", "DENY");
  // Not no-referrer: Chromium then sends `Origin: null` on the dashboard's own forms.
  c.header("referrer-policy", "same-origin");
  if (!c.req.path.startsWith("/ui/assets/")) c.header("cache-control", "no-store");
}
