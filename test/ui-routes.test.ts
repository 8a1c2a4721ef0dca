/**
 * The dashboard's rules over HTTP, without a browser (test/ui-dashboard.test.ts drives one):
 * which views are public, sign-in and its cookie, where sign-in may redirect, the CSRF and
 * origin checks of actions, what retry-now does to each kind of ledger row, the stuck
 * threshold, and the headers every page carries. Real Postgres and helia (api-fixture).
 */
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { applyChanges, getLedgerRow, type LedgerChange } from "@/db/ledger/ledger.js";
import { readReconcileLog } from "@/db/ledger/reads.js";
import { type ApiFixture, createApiFixture } from "./api-fixture.js";

const ADMIN = "routes-admin-token";
// No chain answers here: the overview shows the chain as unreadable, which is all it needs.
const CHAINS = JSON.stringify([
  { id: 31337, rpc: "http://127.0.0.1:9", registry: "0x5fbdb2315678afecb367f032d93f642f64180aa3" },
]);

let api: ApiFixture;
let closed: ApiFixture | undefined;
let backendId: string;

async function cidOf(text: string): Promise<string> {
  return CID.create(1, raw.code, await sha256.digest(new TextEncoder().encode(text))).toString();
}

async function ledger(cid: string, events: LedgerChange["event"][], set?: LedgerChange["set"]) {
  for (const event of events) {
    await api.db
      .withSchema(api.schema.schema)
      .transaction()
      .execute((trx) =>
        applyChanges(trx, [{ backendId, cid, event, ...(set ? { set } : {}) }], {
          now: new Date(),
          pinDeadlineMs: 60_000,
        }),
      );
  }
}

async function signIn(app: ApiFixture["app"]): Promise<{ cookie: string; csrf: string }> {
  const response = await app.request("/ui/login", {
    method: "POST",
    body: new URLSearchParams({ token: ADMIN, next: "/ui/stuck" }),
  });
  expect(response.status).toBe(303);
  const cookie = (response.headers.get("set-cookie") ?? "").split(";")[0] as string;
  const page = await (await app.request("/ui/stuck", { headers: { cookie } })).text();
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? "";
  expect(csrf).not.toBe("");
  return { cookie, csrf };
}

function post(path: string, fields: Record<string, string>, headers: Record<string, string> = {}) {
  return api.app.request(path, {
    method: "POST",
    body: new URLSearchParams(fields),
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  });
}

beforeAll(async () => {
  api = await createApiFixture({
    env: {
      QUASAR_ADMIN_TOKEN: ADMIN,
      QUASAR_UI_PUBLIC: "overview,backends",
      QUASAR_UI_STUCK_AFTER: "1m",
      QUASAR_CHAINS: CHAINS,
    },
  });
  backendId = api.backends[0]?.id as string;
});

afterAll(async () => {
  await api?.close();
  await closed?.close();
});

describe("dashboard access", () => {
  it("serves the public views to anyone and asks for the admin token elsewhere", async () => {
    for (const path of ["/ui", "/ui/backends"]) {
      const response = await api.app.request(path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get("content-security-policy")).toContain("script-src 'self'");
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.headers.get("x-frame-options")).toBe("DENY");
    }
    for (const path of ["/ui/stuck", "/ui/pin", "/ui/keys"]) {
      const response = await api.app.request(path);
      expect(response.status, path).toBe(401);
      expect(await response.text()).toContain('name="token"');
    }
    // The live region alone, for the poller: no page around it.
    const fragment = await api.app.request("/ui", { headers: { "x-quasar-fragment": "1" } });
    const text = await fragment.text();
    expect(text).toContain('data-stat="desired.desired"');
    expect(text).not.toContain("<html");
  });

  it("signs in with the admin token only, into an HttpOnly SameSite=Strict cookie", async () => {
    const wrong = await post("/ui/login", { token: "guess", next: "/ui/keys" });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    const right = await post("/ui/login", { token: ADMIN, next: "/ui/keys" });
    expect(right.status).toBe(303);
    expect(right.headers.get("location")).toBe("/ui/keys");
    const cookie = right.headers.get("set-cookie") ?? "";
    expect(cookie).toMatch(
      /^quasar_ui=[^;]+; Max-Age=43200; Path=\/ui; HttpOnly; SameSite=Strict$/,
    );
    expect(cookie).not.toContain(ADMIN);
    const keys = await api.app.request("/ui/keys", {
      headers: { cookie: cookie.split(";")[0] as string },
    });
    expect(keys.status).toBe(200);
    // A cross-site form cannot sign anyone in.
    const crossSite = await post("/ui/login", { token: ADMIN }, { origin: "https://evil.example" });
    expect(crossSite.status).toBe(401);
  });

  it("redirects after sign-in only within the dashboard", async () => {
    for (const next of [
      "//evil.example/ui",
      "https://evil.example",
      "/ui\\evil",
      "/api/v0/pins",
      "/uix",
    ]) {
      const response = await post("/ui/login", { token: ADMIN, next });
      expect(response.headers.get("location"), next).toBe("/ui");
    }
    const kept = await post("/ui/login", { token: ADMIN, next: "/ui/pin?cid=bafkqaaa" });
    expect(kept.headers.get("location")).toBe("/ui/pin?cid=bafkqaaa");
  });

  it("cannot sign in at all without a configured admin token", async () => {
    closed = await createApiFixture({ env: { QUASAR_CHAINS: CHAINS } });
    const page = await closed.app.request("/ui");
    expect(page.status).toBe(401);
    expect(await page.text()).toContain("signing in is disabled");
    const attempt = await closed.app.request("/ui/login", {
      method: "POST",
      body: new URLSearchParams({ token: "" }),
    });
    expect(attempt.status).toBe(401);
    expect(attempt.headers.get("set-cookie")).toBeNull();
  });
});

describe("stuck pins and retry-now", () => {
  it("lists failed pins and pins queued longer than QUASAR_UI_STUCK_AFTER, oldest first", async () => {
    const failed = await cidOf("ui failed");
    const young = await cidOf("ui queued just now");
    const old = await cidOf("ui queued long ago");
    await ledger(failed, ["want", "dispatch_pin", "pin_give_up"], { last_error: "no provider" });
    await ledger(young, ["want"]);
    await ledger(old, ["want"]);
    await api.db
      .withSchema(api.schema.schema)
      .updateTable("pin_ledger")
      .set({ first_queued_at: new Date(Date.now() - 5 * 60_000) })
      .where("cid", "=", old)
      .execute();
    const { cookie } = await signIn(api.app);
    const page = await (await api.app.request("/ui/stuck", { headers: { cookie } })).text();
    expect(page).toContain('data-stat="stuck.total">2<');
    expect(page).toContain("no provider");
    expect(page).not.toContain(`data-cid="${young}"`);
    expect(page.indexOf(`data-cid="${old}"`)).toBeGreaterThan(-1);
    expect(page.indexOf(`data-cid="${old}"`)).toBeLessThan(page.indexOf(`data-cid="${failed}"`));
  });

  it("requeues a failed pin for an admin with the session's CSRF token, and logs it", async () => {
    const cid = await cidOf("ui retry me");
    await ledger(cid, ["want", "dispatch_pin", "pin_give_up"], {
      next_attempt_at: new Date(Date.now() + 6 * 3_600_000),
    });
    const { cookie, csrf } = await signIn(api.app);
    const fields = { backend: backendId, cid, csrf };

    // Refused: no session, a wrong token, another site.
    expect((await post("/ui/stuck/retry", fields)).status).toBe(403);
    expect((await post("/ui/stuck/retry", { ...fields, csrf: "x" }, { cookie })).status).toBe(403);
    expect(
      (await post("/ui/stuck/retry", fields, { cookie, origin: "https://evil.example" })).status,
    ).toBe(403);
    expect(
      (await post("/ui/stuck/retry", fields, { cookie, "sec-fetch-site": "cross-site" })).status,
    ).toBe(403);
    expect((await post("/ui/stuck/retry", { ...fields, backend: "nope" }, { cookie })).status).toBe(
      400,
    );
    const untouched = await getLedgerRow(api.db.withSchema(api.schema.schema), backendId, cid);
    expect(untouched?.next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 3_600_000);

    const done = await post("/ui/stuck/retry", fields, { cookie });
    expect(done.status).toBe(303);
    expect(done.headers.get("location")).toBe("/ui/stuck?retried=requeued");
    const row = await getLedgerRow(api.db.withSchema(api.schema.schema), backendId, cid);
    expect(row?.status).toBe("failed");
    expect(row?.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now());
    expect(row?.deadline_at?.getTime()).toBeGreaterThan(Date.now());
    const [last] = await readReconcileLog(api.db, api.schema.schema, { cid, limit: 1 });
    expect(last).toMatchObject({
      decision: "requeue",
      reason: "retry now, asked from the dashboard",
    });

    // A pinned CID and an unknown one: nothing to retry, said so.
    const pinned = await cidOf("ui pinned");
    await ledger(pinned, ["want", "dispatch_pin", "pin_ok"]);
    const notStuck = await post("/ui/stuck/retry", { ...fields, cid: pinned }, { cookie });
    expect(notStuck.headers.get("location")).toBe("/ui/stuck?retried=not_stuck");
    const absent = await post(
      "/ui/stuck/retry",
      { ...fields, cid: await cidOf("never") },
      { cookie },
    );
    expect(absent.headers.get("location")).toBe("/ui/stuck?retried=absent");
    const notice = await (
      await api.app.request("/ui/stuck?retried=requeued", { headers: { cookie } })
    ).text();
    expect(notice).toContain("Queued again");
  });
});
