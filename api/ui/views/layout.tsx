import type { Child } from "hono/jsx";
import { formatTime } from "../format.js";

/** The dashboard's views, in navigation order. */
export const UI_VIEWS = ["overview", "pin", "stuck", "backends", "keys"] as const;
export type UiView = (typeof UI_VIEWS)[number];

const TITLES: Record<UiView, string> = {
  overview: "Overview",
  pin: "Pin",
  stuck: "Stuck",
  backends: "Backends",
  keys: "Keys and usage",
};

/** Who is looking, as the pages need it (never the token or the session itself). */
export type UiVisitor = {
  admin: boolean;
  /** The session's CSRF token, repeated by every action form; admins only. */
  csrf?: string;
  /** An admin token is configured, so signing in is possible. */
  signInEnabled: boolean;
  /** Views the visitor may open. */
  views: readonly UiView[];
};

/** The path of a view. */
export const viewPath = (view: UiView) => (view === "overview" ? "/ui" : `/ui/${view}`);

/** The live region's content: replaced every few seconds by assets/live.js. */
export function Live(props: { children: Child; now: Date }) {
  return (
    <>
      {props.children}
      <p class="updated">
        Updated <time data-updated>{formatTime(props.now)}</time>
      </p>
    </>
  );
}

/** The whole page around a view: head, navigation, the live region. */
export function Page(props: {
  view: UiView | "sign-in";
  visitor: UiVisitor;
  children: Child;
  /** Refresh period of the live region; absent: the page does not refresh itself. */
  liveMs?: number;
  /** Where sign-in returns to. */
  next?: string;
}) {
  const { visitor, view } = props;
  const title = view === "sign-in" ? "Sign in" : TITLES[view];
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="same-origin" />
        <title>{`${title} · Quasar`}</title>
        <link rel="icon" href="/ui/assets/icon.svg" type="image/svg+xml" />
        <link rel="stylesheet" href="/ui/assets/ui.css" />
        <script src="/ui/assets/live.js" defer />
      </head>
      <body>
        <header>
          <a class="brand" href="/ui">
            Quasar
          </a>
          <nav>
            {visitor.views.map((item) => (
              <a href={viewPath(item)} aria-current={item === view ? "page" : undefined}>
                {TITLES[item]}
              </a>
            ))}
          </nav>
          <div class="who">
            {visitor.admin ? (
              <form method="post" action="/ui/logout">
                <input type="hidden" name="csrf" value={visitor.csrf} />
                <span class="badge">admin</span>{" "}
                <button type="submit" class="small quiet">
                  Sign out
                </button>
              </form>
            ) : visitor.signInEnabled && view !== "sign-in" ? (
              <a href={`/ui/login?next=${encodeURIComponent(props.next ?? viewPath("overview"))}`}>
                Sign in
              </a>
            ) : null}
          </div>
        </header>
        <main id="live" data-live={props.liveMs === undefined ? undefined : String(props.liveMs)}>
          {props.children}
        </main>
      </body>
    </html>
  );
}

/** Sign-in form (and the page for a view that is not public). */
export function SignIn(props: {
  next: string;
  message?: string;
  signInEnabled: boolean;
  /** The view asked for, when it is not public. */
  view?: UiView;
}) {
  return (
    <section class="sign-in">
      <h1>Sign in</h1>
      {props.view ? (
        <p>
          The {TITLES[props.view].toLowerCase()} view needs the admin token
          {props.view === "keys" ? "." : " (the operator has not made it public)."}
        </p>
      ) : null}
      {props.message ? <p class="error">{props.message}</p> : null}
      {props.signInEnabled ? (
        <form method="post" action="/ui/login" class="stack">
          <input type="hidden" name="next" value={props.next} />
          <label>
            Admin token
            <input
              type="password"
              name="token"
              autocomplete="current-password"
              required
              autofocus
            />
          </label>
          <button type="submit">Sign in</button>
        </form>
      ) : (
        <p>No admin token is configured (QUASAR_ADMIN_TOKEN): signing in is disabled.</p>
      )}
    </section>
  );
}
