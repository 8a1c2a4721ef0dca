/**
 * One redact list for every process (core/logger.ts): the API's and the reconciler's loggers,
 * built exactly as their processes build them, hide the same secret fields. No services.
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createApiLogger } from "@/api/main.js";
import { REDACTED } from "@/core/logger.js";
import { createReconcilerLogger } from "@/reconciler/main.js";

/** Every log line a logger writes, parsed. */
function capture(): { lines: Record<string, unknown>[]; stream: Writable } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  return { lines, stream };
}

const SECRET = "s3cr3t-value";

describe.each([
  ["the API", createApiLogger],
  ["the reconciler", createReconcilerLogger],
])("%s's logger", (_name, create) => {
  it("redacts every secret-bearing field, top level and nested", () => {
    const { lines, stream } = capture();
    const logger = create({ QUASAR_LOG_LEVEL: "info" }, stream);
    logger.info({
      msg: "secrets",
      authorization: `Bearer ${SECRET}`,
      req: { headers: { authorization: `Bearer ${SECRET}`, cookie: SECRET } },
      backend: { connectionString: `kubo://user:${SECRET}@host`, token: SECRET },
      token: SECRET,
      config: { DATABASE_URL: `postgres://quasar:${SECRET}@db/quasar` },
      cid: "bafkqaaa",
    });
    expect(lines).toHaveLength(1);
    const text = JSON.stringify(lines[0]);
    expect(text).not.toContain(SECRET);
    expect(lines[0]).toMatchObject({
      authorization: REDACTED,
      req: { headers: { authorization: REDACTED, cookie: REDACTED } },
      backend: { connectionString: REDACTED, token: REDACTED },
      token: REDACTED,
      config: { DATABASE_URL: REDACTED },
      // What is not a secret stays readable.
      cid: "bafkqaaa",
    });
  });
});
