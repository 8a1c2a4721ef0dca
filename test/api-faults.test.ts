/**
 * Faults an outside probe found in the HTTP API, reproduced with real sockets on loopback
 * against the real app, store (PostgreSQL) and helia backend (see test/api-fixture.ts):
 * a client that closes mid-upload, bodies that stop arriving, too many uploads at once from
 * one client, values dag-json cannot represent, a Host header choosing /ipfs-provider's
 * URLs, and QUASAR_CORS_ORIGINS set empty.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { Writable } from "node:stream";
import { serve } from "@hono/node-server";
import { CID } from "multiformats/cid";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApp } from "@/api/app.js";
import { ConfigError } from "@/core/config/errors.js";
import { loadConfig } from "@/core/config/load.js";
import { type ApiFixture, createApiFixture, formDataBody } from "./api-fixture.js";
import { until } from "./harness/until.js";

const ROOT = join(import.meta.dirname, "..");

type LogLine = { level: number; msg: string; [key: string]: unknown };

/** The fixture's parts behind an app of our own whose log lines we keep, served on loopback. */
async function serveWithLogs(fixture: ApiFixture) {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split("\n")) {
        if (line.trim() !== "") lines.push(JSON.parse(line) as LogLine);
      }
      done();
    },
  });
  const app = createApp({
    config: fixture.config,
    backends: fixture.backends,
    store: fixture.store,
    logger: pino({ level: "debug" }, sink),
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" });
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    app,
    port,
    url: `http://127.0.0.1:${port}`,
    lines,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function pinCount(fixture: ApiFixture): Promise<number> {
  let count = 0;
  for (const backend of fixture.backends) for await (const _ of backend.pins.listPins({})) count++;
  return count;
}

/**
 * Opens a raw socket and sends the head of a multipart upload whose Content-Length promises
 * `declared` bytes, then `sent` bytes of file content, and nothing more.
 */
async function partialUpload(port: number, declared: number, sent: number): Promise<Socket> {
  const boundary = "quasarfaultboundary";
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="entry"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`;
  const socket = connect(port, "127.0.0.1");
  await once(socket, "connect");
  socket.write(
    [
      "POST /api/v0/add HTTP/1.1",
      `Host: 127.0.0.1:${port}`,
      `Content-Type: multipart/form-data; boundary=${boundary}`,
      `Content-Length: ${declared}`,
      "",
      "",
    ].join("\r\n"),
  );
  socket.write(head);
  socket.write(Buffer.alloc(sent, 0x61));
  return socket;
}

/** What the server sent on `socket` until it closed it, or until `timeoutMs`. */
async function answerOf(socket: Socket, timeoutMs: number): Promise<{ text: string; ms: number }> {
  const started = Date.now();
  let text = "";
  socket.on("data", (chunk: Buffer) => {
    text += chunk.toString();
  });
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
  socket.destroy();
  return { text, ms: Date.now() - started };
}

describe("a client that closes mid-upload", () => {
  let fixture: ApiFixture;
  beforeAll(async () => {
    fixture = await createApiFixture();
  });
  afterAll(() => fixture.close());

  it("is logged as a client abort, counted as 499, and leaves nothing pinned", async () => {
    const served = await serveWithLogs(fixture);
    try {
      const pinsBefore = await pinCount(fixture);
      const socket = await partialUpload(served.port, 400_000, 200_000);
      // Let the server start streaming the file into the backend, then vanish.
      await new Promise((resolve) => setTimeout(resolve, 300));
      socket.destroy();

      const metrics = async () => (await served.app.request("/metrics")).text();
      await until(async () => /status="499"/.test(await metrics()), 10_000, 100);
      const text = await metrics();
      expect(text).toMatch(
        /quasar_api_requests_total\{method="POST",route="\/api\/v0\/add",status="499"\} 1/,
      );
      expect(text).not.toMatch(/status="5\d\d"/);
      expect(text).toMatch(/quasar_api_uploads_total\{kind="add",outcome="aborted"\} 1/);

      expect(served.lines.filter((line) => line.level >= 50)).toEqual([]);
      expect(served.lines.map((line) => line.msg)).not.toContain("unhandled error");
      const abort = served.lines.find((line) => line.msg === "client closed the request");
      expect(abort?.level).toBe(30);
      expect(await pinCount(fixture)).toBe(pinsBefore);
    } finally {
      await served.close();
    }
  });
});

describe("slow bodies and concurrent uploads per client", () => {
  let fixture: ApiFixture;
  beforeAll(async () => {
    fixture = await createApiFixture({
      env: { QUASAR_BODY_IDLE_TIMEOUT: "1s", QUASAR_MAX_UPLOADS_PER_CLIENT: "2" },
    });
  });
  afterAll(() => fixture.close());

  it("cuts a body that stops arriving with 408 after the idle timeout", async () => {
    const served = await serveWithLogs(fixture);
    try {
      const pinsBefore = await pinCount(fixture);
      const socket = await partialUpload(served.port, 10_000, 100);
      const { text, ms } = await answerOf(socket, 10_000);
      expect(text).toMatch(/^HTTP\/1\.1 408 /);
      expect(text).toContain('"reason":"REQUEST_TIMEOUT"');
      // 1 s idle timeout; well under the old hour-long request timeout.
      expect(ms).toBeGreaterThanOrEqual(900);
      expect(ms).toBeLessThan(5_000);
      expect(await pinCount(fixture)).toBe(pinsBefore);
    } finally {
      await served.close();
    }
  });

  it("refuses a client's upload beyond the cap with 429, and takes uploads again once slots free", async () => {
    const served = await serveWithLogs(fixture);
    try {
      const slow = [
        await partialUpload(served.port, 10_000, 10),
        await partialUpload(served.port, 10_000, 10),
      ];
      const answers = slow.map((socket) => answerOf(socket, 10_000));
      await new Promise((resolve) => setTimeout(resolve, 200));

      const { body, contentType } = await formDataBody({ entry: new Blob(["third"]) });
      const third = await fetch(`${served.url}/api/v0/add`, {
        method: "POST",
        body,
        headers: { "content-type": contentType },
      });
      expect(third.status).toBe(429);
      expect(third.headers.get("retry-after")).toBe("1");
      expect(await third.json()).toMatchObject({ error: { reason: "TOO_MANY_UPLOADS" } });

      // The slow ones are cut by the idle timeout, which gives their slots back.
      for (const answer of await Promise.all(answers))
        expect(answer.text).toMatch(/^HTTP\/1\.1 408 /);
      const again = await fetch(`${served.url}/api/v0/add`, {
        method: "POST",
        body,
        headers: { "content-type": contentType },
      });
      expect(again.status).toBe(201);
    } finally {
      await served.close();
    }
  });
});

describe("the upload's confirmation is off the answer's path", () => {
  let fixture: ApiFixture;
  beforeAll(async () => {
    fixture = await createApiFixture();
  });
  afterAll(() => fixture.close());

  it("a confirmation that hangs or fails never delays or fails the answer; the intent stays recorded", async () => {
    // A mock for a fault no real part produces on cue: the database answering the upload's
    // record but not (or not yet, or never) its confirmation.
    const lines: LogLine[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split("\n")) {
          if (line.trim() !== "") lines.push(JSON.parse(line) as LogLine);
        }
        done();
      },
    });
    let release: (failure: Error) => void = () => {};
    const held = new Promise<void>((_, reject) => {
      release = reject;
    });
    const app = createApp({
      config: fixture.config,
      backends: fixture.backends,
      store: { ...fixture.store, confirmUploadPin: () => held },
      logger: pino({ level: "info" }, sink),
    });
    const { body, contentType } = await formDataBody({ entry: new Blob(["confirm later"]) });
    const response = await app.request("/api/v0/add", {
      method: "POST",
      body,
      headers: { "content-type": contentType },
    });
    expect(response.status).toBe(201);
    const cid = CID.parse(await response.text());
    // Pinned and recorded as Quasar's intent (owned): the engine confirms it after its grace.
    expect(await fixture.backends[0]?.pins.getPin(cid, {})).toBeDefined();
    const status = (await (await fixture.app.request(`/api/v0/pins/${cid}`)).json()) as {
      desired: boolean;
      backends: { status: string }[];
    };
    expect(status.desired).toBe(true);
    expect(status.backends.map((b) => b.status)).toEqual(["queued"]);
    release(new Error("the database went away"));
    await expect
      .poll(() => lines.some((line) => /confirmation was not recorded/.test(line.msg)))
      .toBe(true);
  });
});

describe("dag/put refuses what dag-json cannot represent", () => {
  let fixture: ApiFixture;
  beforeAll(async () => {
    fixture = await createApiFixture();
  });
  afterAll(() => fixture.close());

  it.each([
    ['{"a":1e400}', "/a", "Infinity"],
    ['{"a":"\\ud800"}', "/a", "lone UTF-16 surrogate"],
    ['{"list":[0,{"n":-1e999}]}', "/list/1/n", "-Infinity"],
  ])("%s: 400 naming %s on both mounts, nothing stored", async (json, path, problem) => {
    const pinsBefore = await pinCount(fixture);

    const quasar = await fixture.app.request("/api/v0/dag/put", {
      method: "POST",
      body: json,
      headers: { "content-type": "application/json" },
    });
    expect(quasar.status).toBe(400);
    const body = (await quasar.json()) as { error: { reason: string; details: string } };
    expect(body.error.reason).toBe("INVALID_ARGUMENT");
    expect(body.error.details).toContain(`the value at ${path} `);
    expect(body.error.details).toContain(problem);

    const { body: form, contentType } = await formDataBody({ file: new Blob([json]) });
    const kubo = await fixture.app.request("/kubo/api/v0/dag/put?input-codec=dag-json", {
      method: "POST",
      body: form,
      headers: { "content-type": contentType },
    });
    expect(kubo.status).toBe(400);
    const kuboBody = (await kubo.json()) as { Message: string; Code: number; Type: string };
    expect(kuboBody).toMatchObject({ Code: 1, Type: "error" });
    expect(kuboBody.Message).toContain(`the value at ${path} `);

    const plainJson = await fixture.app.request("/kubo/api/v0/dag/put?input-codec=json", {
      method: "POST",
      body: form,
      headers: { "content-type": contentType },
    });
    expect(plainJson.status).toBe(400);

    expect(await pinCount(fixture)).toBe(pinsBefore);
  });

  it("still stores well-formed values, surrogate pairs included", async () => {
    const response = await fixture.app.request("/api/v0/dag/put", {
      method: "POST",
      body: '{"a":1e300,"b":"\\ud83d\\ude00"}',
      headers: { "content-type": "application/json" },
    });
    expect(response.status).toBe(201);
  });
});

describe("ipfs-provider and CORS settings", () => {
  let fixture: ApiFixture;
  beforeAll(async () => {
    fixture = await createApiFixture({ env: { QUASAR_CORS_ORIGINS: "" } });
  });
  afterAll(() => fixture.close());

  it("QUASAR_CORS_ORIGINS set empty allows no origin", async () => {
    const preflight = await fixture.app.request("/api/v0/add", {
      method: "OPTIONS",
      headers: { origin: "https://any.example", "access-control-request-method": "POST" },
    });
    expect(preflight.headers.get("access-control-allow-origin")).toBeNull();
    const get = await fixture.app.request("/healthz", {
      headers: { origin: "https://any.example" },
    });
    expect(get.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("a loopback listener derives the base URL from the request; a public one needs QUASAR_PUBLIC_URL", async () => {
    const local = await fixture.app.request("http://127.0.0.1:3000/api/v0/ipfs-provider");
    expect(((await local.json()) as { baseUrl: string }).baseUrl).toBe(
      "http://127.0.0.1:3000/api/v0/",
    );

    // A public listener without QUASAR_PUBLIC_URL is refused before it serves anything…
    const publicConfig = { ...fixture.config, QUASAR_API_HOST: "0.0.0.0" };
    expect(() =>
      createApp({
        config: publicConfig,
        backends: fixture.backends,
        store: fixture.store,
        logger: pino({ level: "silent" }),
      }),
    ).toThrow(ConfigError);
    // …and with it, the Host header has no say.
    const app = createApp({
      config: { ...publicConfig, QUASAR_PUBLIC_URL: "https://quasar.example.org" },
      backends: fixture.backends,
      store: fixture.store,
      logger: pino({ level: "silent" }),
    });
    const answer = await app.request("http://evil.example/api/v0/ipfs-provider", {
      headers: { host: "evil.example" },
    });
    expect(((await answer.json()) as { baseUrl: string }).baseUrl).toBe(
      "https://quasar.example.org/api/v0/",
    );
    expect(() => loadConfig({ QUASAR_API_HOST: "0.0.0.0" })).toThrow(/QUASAR_PUBLIC_URL: required/);
  });

  it("`quasar config check` and the API process refuse a public listener without QUASAR_PUBLIC_URL", async () => {
    const env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      QUASAR_API_HOST: "0.0.0.0",
    };
    const run = async (args: string[]) => {
      const child = spawn(join(ROOT, "node_modules", ".bin", "node"), args, {
        cwd: ROOT,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
      });
      child.stderr.on("data", (chunk: Buffer) => {
        out += chunk.toString();
      });
      const [code] = (await once(child, "exit")) as [number | null];
      return { code, out };
    };
    const check = await run([join(ROOT, "bin", "quasar.js"), "config", "check"]);
    expect(check.code).toBe(1);
    expect(check.out).toMatch(
      /invalid QUASAR_PUBLIC_URL: required when QUASAR_API_HOST \("0\.0\.0\.0"\) is not a loopback address/,
    );
    const api = await run([join(ROOT, "node_modules", "tsx", "dist", "cli.mjs"), "api/main.ts"]);
    expect(api.code).toBe(1);
    expect(api.out).toMatch(/QUASAR_PUBLIC_URL: required when QUASAR_API_HOST/);
  }, 60_000);
});
