import { readFileSync } from "node:fs";
import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import type { Child } from "hono/jsx";
import { checkCid } from "@/src/cid.js";
import { keyIdOf } from "../auth.js";
import type { ApiCommon, ApiEnv } from "../context.js";
import type { ApiApp } from "../routes/shared.js";
import { createUiSessions, SESSION_COOKIE, SESSION_TTL_MS, sameSecret } from "./session.js";
import type { DashboardSource } from "./source.js";
import { BackendsView } from "./views/backends.js";
import { KeysView } from "./views/keys.js";
import {
  Live,
  Page,
  SignIn,
  UI_VIEWS,
  type UiView,
  type UiVisitor,
  viewPath,
} from "./views/layout.js";
import { Overview } from "./views/overview.js";
import { type PinLookup, PinSearch, PinView } from "./views/pin.js";
import { StuckView } from "./views/stuck.js";

/**
 * The operator dashboard at /ui: server-rendered pages (Hono JSX), one stylesheet and one
 * small script served from this process (no CDN, no build step). The script re-fetches the
 * page's live region every few seconds with `X-Quasar-Fragment: 1`, which answers the region
 * alone. Public views are QUASAR_UI_PUBLIC; everything else needs the admin sign-in.
 */
export function registerUiRoutes(app: ApiApp, common: ApiCommon, source: DashboardSource): void {
  const { config } = common;
  const sessions = createUiSessions(config.QUASAR_ADMIN_TOKEN);
  const publicViews = config.QUASAR_UI_PUBLIC;
  const labels = new Map(common.backends.map((backend) => [backend.id, backend.label]));
  const keyIds = config.QUASAR_API_KEYS.map(keyIdOf);
  const publicOrigin = config.QUASAR_PUBLIC_URL ? new URL(config.QUASAR_PUBLIC_URL).origin : "";

  const visitorOf = (c: Context<ApiEnv>): UiVisitor => {
    const session = sessions.verify(getCookie(c, SESSION_COOKIE), common.now());
    return {
      admin: session !== undefined,
      ...(session ? { csrf: session.csrf } : {}),
      signInEnabled: sessions.enabled,
      views: UI_VIEWS.filter(
        (view) => session !== undefined || (publicViews as readonly string[]).includes(view),
      ),
    };
  };

  /** The whole page, or only the live region when the poller asks. */
  const render = (
    c: Context<ApiEnv>,
    view: UiView | "sign-in",
    visitor: UiVisitor,
    content: Child,
    status: 200 | 401 | 403 = 200,
  ) => {
    if (c.req.header("x-quasar-fragment") === "1")
      return c.html(String(<Live now={new Date(common.now())}>{content}</Live>), status);
    const page = (
      <Page
        view={view}
        visitor={visitor}
        next={c.req.path + (new URL(c.req.url).search || "")}
        {...(view === "sign-in" ? {} : { liveMs: LIVE_REFRESH_MS })}
      >
        <Live now={new Date(common.now())}>{content}</Live>
      </Page>
    );
    return c.html(`<!doctype html>${String(page)}`, status);
  };

  /** The visitor when it may open `view`; otherwise the sign-in answer to send. */
  const gate = (
    c: Context<ApiEnv>,
    view: UiView,
  ): { visitor: UiVisitor; denied?: undefined } | { denied: Response | Promise<Response> } => {
    const visitor = visitorOf(c);
    if (visitor.views.includes(view)) return { visitor };
    const next = c.req.path + (new URL(c.req.url).search || "");
    return {
      denied: render(
        c,
        "sign-in",
        visitor,
        <SignIn next={next} view={view} signInEnabled={sessions.enabled} />,
        401,
      ),
    };
  };

  /**
   * Actions come from this dashboard only: a browser's Sec-Fetch-Site and Origin (when sent)
   * must be this site. The CSRF token and the SameSite cookie are checked besides.
   */
  const sameOrigin = (c: Context<ApiEnv>): boolean => {
    const site = c.req.header("sec-fetch-site");
    if (site !== undefined && site !== "same-origin" && site !== "none") return false;
    const origin = c.req.header("origin");
    if (origin === undefined) return true;
    return origin === new URL(c.req.url).origin || (publicOrigin !== "" && origin === publicOrigin);
  };

  /** The admin's session when the form's CSRF token matches it and the request is ours. */
  const authorizeAction = async (c: Context<ApiEnv>) => {
    const visitor = visitorOf(c);
    const form = await c.req.parseBody();
    const csrf = typeof form.csrf === "string" ? form.csrf : "";
    const ok =
      visitor.admin &&
      visitor.csrf !== undefined &&
      sameSecret(csrf, visitor.csrf) &&
      sameOrigin(c);
    return { ok, form, visitor };
  };

  app.use("/ui", securityHeaders);
  app.use("/ui/*", securityHeaders);

  app.get("/ui/assets/ui.css", (c) =>
    c.body(STYLESHEET, 200, { "content-type": "text/css; charset=utf-8", ...ASSET_CACHE }),
  );
  app.get("/ui/assets/live.js", (c) =>
    c.body(LIVE_SCRIPT, 200, {
      "content-type": "text/javascript; charset=utf-8",
      ...ASSET_CACHE,
    }),
  );

  app.get("/ui/assets/icon.svg", (c) =>
    c.body(ICON, 200, { "content-type": "image/svg+xml", ...ASSET_CACHE }),
  );

  app.get("/ui", async (c) => {
    const access = gate(c, "overview");
    if (access.denied) return access.denied;
    const [report, pinRate] = await Promise.all([source.status(), source.pinsPerMinute()]);
    return render(c, "overview", access.visitor, <Overview report={report} pinRate={pinRate} />);
  });

  app.get("/ui/pin", async (c) => {
    const access = gate(c, "pin");
    if (access.denied) return access.denied;
    const input = (c.req.query("cid") ?? "").trim();
    let lookup: PinLookup = { kind: "empty" };
    if (input !== "") {
      const check = checkCid(input);
      if (!check.valid) lookup = { kind: "invalid", input, error: check.detail };
      else {
        const [reasons, backends, log] = await Promise.all([
          common.store.reasonsFor(check.cid),
          common.store.backendStates(check.cid),
          source.reconcileLog(check.cid),
        ]);
        lookup = { kind: "found", input, cid: check.cid, reasons, backends, log };
      }
    }
    return render(
      c,
      "pin",
      access.visitor,
      <>
        <h1>Pin</h1>
        <PinSearch input={input} />
        <PinView lookup={lookup} labels={labels} />
      </>,
    );
  });

  app.get("/ui/stuck", async (c) => {
    const access = gate(c, "stuck");
    if (access.denied) return access.denied;
    const retried = c.req.query("retried");
    const stuck = await source.stuck(STUCK_ROWS);
    return render(
      c,
      "stuck",
      access.visitor,
      <StuckView
        stuck={stuck}
        thresholdMs={config.QUASAR_UI_STUCK_AFTER}
        labels={labels}
        visitor={access.visitor}
        {...(isRetryOutcome(retried) ? { retried } : {})}
      />,
    );
  });

  app.post("/ui/stuck/retry", async (c) => {
    const { ok, form } = await authorizeAction(c);
    if (!ok) return c.text("forbidden: sign in again and retry from the dashboard", 403);
    const backendId = typeof form.backend === "string" ? form.backend : "";
    const check = checkCid(typeof form.cid === "string" ? form.cid : "");
    if (!labels.has(backendId) || !check.valid) return c.text("unknown backend or CID", 400);
    const outcome = await source.retryNow(backendId, check.cid);
    common.logger.info({
      msg: "retry now from the dashboard",
      backend: backendId,
      cid: check.cid,
      outcome,
    });
    return c.redirect(`/ui/stuck?retried=${outcome}`, 303);
  });

  app.get("/ui/backends", async (c) => {
    const access = gate(c, "backends");
    if (access.denied) return access.denied;
    const [report, errors, replication] = await Promise.all([
      source.status(),
      source.recentErrors(),
      source.replication(),
    ]);
    return render(
      c,
      "backends",
      access.visitor,
      <BackendsView report={report} errors={errors} replication={replication} />,
    );
  });

  app.get("/ui/keys", async (c) => {
    const access = gate(c, "keys");
    if (access.denied) return access.denied;
    return render(
      c,
      "keys",
      access.visitor,
      <KeysView keyIds={keyIds} usage={await source.usage()} />,
    );
  });

  app.get("/ui/login", (c) => {
    const visitor = visitorOf(c);
    return render(
      c,
      "sign-in",
      visitor,
      <SignIn next={safeNext(c.req.query("next"))} signInEnabled={sessions.enabled} />,
    );
  });

  app.post("/ui/login", async (c) => {
    const visitor = visitorOf(c);
    const form = await c.req.parseBody();
    const next = safeNext(typeof form.next === "string" ? form.next : undefined);
    const token = typeof form.token === "string" ? form.token : "";
    const valid =
      sessions.enabled &&
      sameOrigin(c) &&
      token.length <= 4_096 &&
      sameSecret(token, config.QUASAR_ADMIN_TOKEN);
    if (!valid) {
      common.logger.warn({ msg: "dashboard sign-in refused" });
      return render(
        c,
        "sign-in",
        visitor,
        <SignIn
          next={next}
          signInEnabled={sessions.enabled}
          message="That is not the admin token."
        />,
        401,
      );
    }
    setCookie(c, SESSION_COOKIE, sessions.issue(common.now()), {
      path: "/ui",
      httpOnly: true,
      sameSite: "Strict",
      secure: isHttps(c, config.QUASAR_PUBLIC_URL),
      maxAge: Math.floor(SESSION_TTL_MS / 1_000),
    });
    return c.redirect(next, 303);
  });

  app.post("/ui/logout", async (c) => {
    const { ok } = await authorizeAction(c);
    if (!ok) return c.text("forbidden", 403);
    deleteCookie(c, SESSION_COOKIE, { path: "/ui" });
    return c.redirect(viewPath("overview"), 303);
  });
}

const LIVE_REFRESH_MS = 5_000;
const STUCK_ROWS = 200;
const ASSET_CACHE = { "cache-control": "public, max-age=300" };

// Read once at start: the assets ship with the source, nothing is built.
const STYLESHEET = readFileSync(new URL("./assets/ui.css", import.meta.url), "utf8");
const LIVE_SCRIPT = readFileSync(new URL("./assets/live.js", import.meta.url), "utf8");
const ICON = readFileSync(new URL("./assets/icon.svg", import.meta.url), "utf8");

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

/** Where sign-in may send the browser: a dashboard path, never another site. */
function safeNext(next: string | undefined): string {
  if (next === undefined || !/^\/ui(\/[A-Za-z0-9/_-]*)?(\?[^\\]*)?$/.test(next)) return "/ui";
  return next;
}

function isHttps(c: Context<ApiEnv>, publicUrl: string): boolean {
  return new URL(c.req.url).protocol === "https:" || publicUrl.startsWith("https:");
}

const RETRY_OUTCOMES = ["requeued", "in_flight", "not_stuck", "absent"] as const;
function isRetryOutcome(value: string | undefined): value is (typeof RETRY_OUTCOMES)[number] {
  return (RETRY_OUTCOMES as readonly (string | undefined)[]).includes(value);
}
