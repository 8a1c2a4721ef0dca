import type { Context } from "hono";
import type { Child } from "hono/jsx";
import type { ApiEnv } from "../context.js";
import { Live, Page, type UiView, type UiVisitor } from "./views/layout.js";

/** How often an open page refreshes its live region (assets/live.js). */
export const LIVE_REFRESH_MS = 5_000;

/** Answers a dashboard page: the whole page, or only its live region when the poller asks. */
export type UiRender = (
  c: Context<ApiEnv>,
  view: UiView | "sign-in",
  visitor: UiVisitor,
  content: Child,
  status?: 200 | 401,
) => Response | Promise<Response>;

export function createUiRender(now: () => number): UiRender {
  return (c, view, visitor, content, status = 200) => {
    const live = <Live now={new Date(now())}>{content}</Live>;
    if (c.req.header("x-quasar-fragment") === "1") return c.html(String(live), status);
    const page = (
      <Page
        view={view}
        visitor={visitor}
        next={c.req.path + new URL(c.req.url).search}
        {...(view === "sign-in" ? {} : { liveMs: LIVE_REFRESH_MS })}
      >
        {live}
      </Page>
    );
    return c.html(`<!doctype html>${String(page)}`, status);
  };
}
