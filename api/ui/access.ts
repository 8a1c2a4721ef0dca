import type { Context } from "hono";
import { getCookie } from "hono/cookie";
import type { ApiCommon, ApiEnv } from "../context.js";
import { createUiSessions, SESSION_COOKIE, sameSecret, type UiSessions } from "./session.js";
import { UI_VIEWS, type UiVisitor } from "./views/layout.js";

/**
 * Who may see and do what on the dashboard: the session cookie makes an admin; the views in
 * QUASAR_UI_PUBLIC are open to everyone else. Actions need an admin whose form repeats the
 * session's CSRF token, sent from this site.
 */
export type UiAccess = {
  sessions: UiSessions;
  visitorOf(c: Context<ApiEnv>): UiVisitor;
  /**
   * Whether a browser sent this from the dashboard: Sec-Fetch-Site and Origin, when present,
   * must name this site (the API's own origin or QUASAR_PUBLIC_URL's).
   */
  sameOrigin(c: Context<ApiEnv>): boolean;
  /** Reads the form; `ok` only for an admin with the session's CSRF token, from this site. */
  authorizeAction(
    c: Context<ApiEnv>,
  ): Promise<{ ok: boolean; form: Record<string, unknown>; visitor: UiVisitor }>;
};

export function createUiAccess(common: Pick<ApiCommon, "config" | "now">): UiAccess {
  const { config } = common;
  const sessions = createUiSessions(config.QUASAR_ADMIN_TOKEN);
  const publicViews: readonly string[] = config.QUASAR_UI_PUBLIC;
  const publicOrigin = config.QUASAR_PUBLIC_URL ? new URL(config.QUASAR_PUBLIC_URL).origin : "";

  const visitorOf = (c: Context<ApiEnv>): UiVisitor => {
    const session = sessions.verify(getCookie(c, SESSION_COOKIE), common.now());
    return {
      admin: session !== undefined,
      ...(session ? { csrf: session.csrf } : {}),
      signInEnabled: sessions.enabled,
      views: UI_VIEWS.filter((view) => session !== undefined || publicViews.includes(view)),
    };
  };

  const sameOrigin = (c: Context<ApiEnv>): boolean => {
    const site = c.req.header("sec-fetch-site");
    if (site !== undefined && site !== "same-origin" && site !== "none") return false;
    const origin = c.req.header("origin");
    if (origin === undefined) return true;
    return origin === new URL(c.req.url).origin || (publicOrigin !== "" && origin === publicOrigin);
  };

  return {
    sessions,
    visitorOf,
    sameOrigin,
    async authorizeAction(c) {
      const visitor = visitorOf(c);
      const form = await c.req.parseBody();
      const csrf = typeof form.csrf === "string" ? form.csrf : "";
      const ok =
        visitor.admin &&
        visitor.csrf !== undefined &&
        sameSecret(csrf, visitor.csrf) &&
        sameOrigin(c);
      return { ok, form, visitor };
    },
  };
}
