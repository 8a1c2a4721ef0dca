import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";

/**
 * The dashboard's admin sign-in: the admin token, typed once into a form, becomes a signed
 * session cookie (HttpOnly, SameSite=Strict), so the token itself never sits in the page, in
 * a script or in a later request. Stateless: every API process checks a session with the
 * key derived from QUASAR_ADMIN_TOKEN, and rotating the token signs every session out.
 *
 * Each session carries a CSRF token (an HMAC of the session's nonce) that every form posting
 * an action repeats; SameSite=Strict already keeps the cookie off cross-site requests, and
 * the Origin check in the routes is a third line.
 */
export type UiSessions = {
  /** False when no admin token is configured: nobody can sign in. */
  readonly enabled: boolean;
  /** A new session's cookie value, valid for SESSION_TTL_MS. */
  issue(now: number): string;
  /** The session of a cookie value, or undefined when absent, forged or expired. */
  verify(cookie: string | undefined, now: number): UiSession | undefined;
};

export type UiSession = {
  /** Repeated by every form that posts an action; bound to this session. */
  csrf: string;
  expiresAt: number;
};

export const SESSION_COOKIE = "quasar_ui";
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

const sign = (key: Buffer, text: string): string =>
  createHmac("sha256", key).update(text, "utf8").digest("base64url");

/** Equal strings, compared in constant time. */
export function sameSecret(a: string, b: string): boolean {
  const left = createHash("sha256").update(a, "utf8").digest();
  const right = createHash("sha256").update(b, "utf8").digest();
  return timingSafeEqual(left, right);
}

export function createUiSessions(adminToken: string): UiSessions {
  // Domain-separated: a session signature is never a hash an attacker could meet elsewhere.
  const key =
    adminToken === ""
      ? undefined
      : createHash("sha256").update(`quasar-ui-session\u0000${adminToken}`, "utf8").digest();
  return {
    enabled: key !== undefined,
    issue(now) {
      if (key === undefined) throw new Error("no admin token: sessions are disabled");
      const expiresAt = Math.floor((now + SESSION_TTL_MS) / 1_000);
      const nonce = randomBytes(16).toString("base64url");
      return `${expiresAt}.${nonce}.${sign(key, `session.${expiresAt}.${nonce}`)}`;
    },
    verify(cookie, now) {
      if (key === undefined || cookie === undefined) return undefined;
      const match = /^(\d{1,12})\.([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/.exec(cookie);
      if (!match) return undefined;
      const [, expires, nonce, signature] = match as unknown as [string, string, string, string];
      if (!sameSecret(signature, sign(key, `session.${expires}.${nonce}`))) return undefined;
      const expiresAt = Number(expires) * 1_000;
      if (expiresAt <= now) return undefined;
      return { csrf: sign(key, `csrf.${nonce}`), expiresAt };
    },
  };
}
