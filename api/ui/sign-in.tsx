import type { Context } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import type { ApiCommon, ApiEnv } from "../context.js";
import type { ApiApp } from "../routes/shared.js";
import type { UiAccess } from "./access.js";
import type { UiRender } from "./render.js";
import { SESSION_COOKIE, SESSION_TTL_MS, sameSecret } from "./session.js";
import { SignIn, viewPath } from "./views/layout.js";

/**
 * Sign-in and sign-out: the admin token, posted once from the form, becomes the session
 * cookie (HttpOnly, SameSite=Strict, Secure behind https). Refusals are logged without the
 * token; attempts are rate limited with the API's limiter (app.ts).
 */
export function registerSignInRoutes(
  app: ApiApp,
  common: ApiCommon,
  access: UiAccess,
  render: UiRender,
): void {
  const { config } = common;
  const { sessions } = access;

  app.get("/ui/login", (c) =>
    render(
      c,
      "sign-in",
      access.visitorOf(c),
      <SignIn next={safeNext(c.req.query("next"))} signInEnabled={sessions.enabled} />,
    ),
  );

  app.post("/ui/login", async (c) => {
    const form = await c.req.parseBody();
    const next = safeNext(typeof form.next === "string" ? form.next : undefined);
    const token = typeof form.token === "string" ? form.token : "";
    const valid =
      sessions.enabled &&
      access.sameOrigin(c) &&
      token.length <= 4_096 &&
      sameSecret(token, config.QUASAR_ADMIN_TOKEN);
    if (!valid) {
      common.logger.warn({ msg: "dashboard sign-in refused" });
      return render(
        c,
        "sign-in",
        access.visitorOf(c),
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
    const { ok } = await access.authorizeAction(c);
    if (!ok) return c.text("forbidden", 403);
    deleteCookie(c, SESSION_COOKIE, { path: "/ui" });
    return c.redirect(viewPath("overview"), 303);
  });
}

/** Where sign-in may send the browser: a dashboard path, never another site. */
export function safeNext(next: string | undefined): string {
  if (next === undefined || !/^\/ui(\/[A-Za-z0-9/_-]*)?(\?[^\\]*)?$/.test(next)) return "/ui";
  return next;
}

function isHttps(c: Context<ApiEnv>, publicUrl: string): boolean {
  return new URL(c.req.url).protocol === "https:" || publicUrl.startsWith("https:");
}
