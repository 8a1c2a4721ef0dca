import { describe, expect, it } from "vitest";
import { createUiSessions, SESSION_TTL_MS } from "./session.js";

describe("dashboard sessions", () => {
  const now = 1_800_000_000_000;

  it("verifies its own cookie, with a CSRF token bound to the session", () => {
    const sessions = createUiSessions("admin-secret");
    const a = sessions.issue(now);
    const b = sessions.issue(now);
    const sa = sessions.verify(a, now + 1_000);
    const sb = sessions.verify(b, now + 1_000);
    expect(sa).toBeDefined();
    expect(sb).toBeDefined();
    expect(sa?.csrf).not.toBe(sb?.csrf);
    expect(a).not.toContain("admin-secret");
  });

  it("refuses an expired, forged or foreign cookie", () => {
    const sessions = createUiSessions("admin-secret");
    const cookie = sessions.issue(now);
    expect(sessions.verify(cookie, now + SESSION_TTL_MS + 1_000)).toBeUndefined();
    const [expires, nonce, signature] = cookie.split(".") as [string, string, string];
    // A later expiry with the old signature.
    expect(sessions.verify(`${Number(expires) + 3600}.${nonce}.${signature}`, now)).toBeUndefined();
    expect(sessions.verify(`${expires}.${nonce}.${"A".repeat(43)}`, now)).toBeUndefined();
    // Signed with another admin token (rotated): every session is signed out.
    expect(createUiSessions("rotated").verify(cookie, now)).toBeUndefined();
    expect(sessions.verify(undefined, now)).toBeUndefined();
    expect(sessions.verify("garbage", now)).toBeUndefined();
  });

  it("is disabled without an admin token", () => {
    const sessions = createUiSessions("");
    expect(sessions.enabled).toBe(false);
    expect(() => sessions.issue(now)).toThrow();
    expect(sessions.verify("1.a.b", now)).toBeUndefined();
  });
});
