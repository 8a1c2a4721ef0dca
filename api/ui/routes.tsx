import type { Context } from "hono";
import { checkCid } from "@/src/cid.js";
import { keyIdOf } from "../auth.js";
import type { ApiCommon, ApiEnv } from "../context.js";
import type { ApiApp } from "../routes/shared.js";
import { createUiAccess } from "./access.js";
import { registerUiAssets } from "./assets.js";
import { createUiRender } from "./render.js";
import { registerSignInRoutes } from "./sign-in.js";
import type { DashboardSource } from "./source.js";
import { BackendsView } from "./views/backends.js";
import { KeysView } from "./views/keys.js";
import { SignIn, type UiView, type UiVisitor } from "./views/layout.js";
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
  const access = createUiAccess(common);
  const render = createUiRender(common.now);
  const labels = new Map(common.backends.map((backend) => [backend.id, backend.label]));
  const keyIds = config.QUASAR_API_KEYS.map(keyIdOf);

  /** The visitor when it may open `view`; otherwise the sign-in page to answer with. */
  const gate = (
    c: Context<ApiEnv>,
    view: UiView,
  ): { visitor: UiVisitor; denied?: undefined } | { denied: Response | Promise<Response> } => {
    const visitor = access.visitorOf(c);
    if (visitor.views.includes(view)) return { visitor };
    const next = c.req.path + new URL(c.req.url).search;
    const signIn = <SignIn next={next} view={view} signInEnabled={access.sessions.enabled} />;
    return { denied: render(c, "sign-in", visitor, signIn, 401) };
  };

  registerUiAssets(app);
  registerSignInRoutes(app, common, access, render);

  app.get("/ui", async (c) => {
    const access = gate(c, "overview");
    if (access.denied) return access.denied;
    // The report lists what it could not read; an unreadable log only leaves the chart empty.
    const [report, pinRate] = await Promise.all([
      source.status(),
      source.pinsPerMinute().catch(() => []),
    ]);
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
    const { ok, form } = await access.authorizeAction(c);
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
}

const STUCK_ROWS = 200;

const RETRY_OUTCOMES = ["requeued", "in_flight", "not_stuck", "absent"] as const;
function isRetryOutcome(value: string | undefined): value is (typeof RETRY_OUTCOMES)[number] {
  return (RETRY_OUTCOMES as readonly (string | undefined)[]).includes(value);
}
