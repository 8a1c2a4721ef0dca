/**
 * `quasar dev` under two operator mistakes/accidents, on the real stack:
 * - its embedded PostgreSQL dies (the postmaster is SIGKILLed): the stack restarts it and
 *   uploads work again without anyone touching it;
 * - DATABASE_URL carries a password: no line printed to the terminal shows it, and
 *   .quasar/dev.env (which must hold it for the other commands) is documented and 0600;
 * - a second Ctrl-C while it stops: it exits at once, and its PostgreSQL and anvil stop too;
 * - another PostgreSQL on the port it picked: never taken for its own.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import getPort, { portNumbers } from "get-port";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { PortTakenError } from "@/cli/errors.js";
import { startEmbeddedPostgres } from "@/cli/runtime/postgres.js";
import { TEST_DATABASE_URL } from "./harness/postgres.js";
import { descendantsOf, survivors } from "./harness/processes.js";

const ROOT = join(import.meta.dirname, "..");
const NODE = join(ROOT, "node_modules", ".bin", "node");
const QUASAR = join(ROOT, "bin", "quasar.js");

type Dev = { child: ChildProcess; cwd: string; output: () => string };
const running: Dev[] = [];
const dirs: string[] = [];

/** A fresh directory PostgreSQL's user can reach (it runs unprivileged when we are root). */
async function devDir(): Promise<string> {
  const cwd = await mkdtemp(join(tmpdir(), "quasar-dev-faults-"));
  dirs.push(cwd);
  await chmod(cwd, 0o755);
  return cwd;
}

async function startDev(env: Record<string, string> = {}): Promise<Dev> {
  const cwd = await devDir();
  const child = spawn(NODE, [QUASAR, "dev"], {
    cwd,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  // Everything a person sees: stdout and stderr, whole (the secret test reads every line).
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const dev = { child, cwd, output: () => output };
  running.push(dev);
  return dev;
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  dev: Dev,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (dev.child.exitCode !== null) {
      throw new Error(`quasar dev exited waiting for ${what}\n${dev.output().slice(-5000)}`);
    }
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}\n${dev.output().slice(-5000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

const ready = (dev: Dev) =>
  waitFor(
    "ready",
    async () => (dev.output().includes("\nready\n") ? true : undefined),
    240_000,
    dev,
  );

async function devEnv(dev: Dev): Promise<Record<string, string>> {
  const text = await readFile(join(dev.cwd, ".quasar", "dev.env"), "utf8");
  return Object.fromEntries(
    text
      .split("\n")
      .filter((line) => line.includes("=") && !line.startsWith("#"))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

async function upload(api: string, text: string): Promise<number> {
  const form = new FormData();
  form.append("entry", new Blob([text]), "a.txt");
  const response = await fetch(`${api}/api/v0/add`, {
    method: "POST",
    body: form,
    signal: AbortSignal.timeout(15_000),
  });
  await response.text();
  return response.status;
}

/** GET on a connection of its own (no keep-alive reuse), bounded. */
function getFresh(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = get(url, { agent: false, timeout: 15_000 }, (response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      response.on("end", () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on("timeout", () => request.destroy(new Error(`no answer from ${url} in 15 s`)));
    request.on("error", reject);
  });
}

async function stopDev(dev: Dev): Promise<void> {
  if (dev.child.exitCode !== null || dev.child.signalCode !== null) return;
  const exited = once(dev.child, "exit");
  dev.child.kill("SIGINT");
  const timer = setTimeout(() => dev.child.kill("SIGKILL"), 90_000);
  const [code] = (await exited) as [number | null];
  clearTimeout(timer);
  expect(code, dev.output().slice(-3000)).toBe(0);
}

afterAll(async () => {
  for (const dev of running) await stopDev(dev).catch(() => {});
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe("quasar dev faults", () => {
  it("restarts its embedded PostgreSQL after the postmaster is killed; uploads work again", async () => {
    const dev = await startDev();
    await ready(dev);
    const api = `http://127.0.0.1:${(await devEnv(dev)).QUASAR_API_PORT}`;
    expect(await upload(api, `before ${Date.now()}`)).toBe(201);

    const pidFile = await readFile(join(dev.cwd, ".quasar", "pg", "postmaster.pid"), "utf8");
    const postmaster = Number(pidFile.split("\n")[0]);
    expect(postmaster).toBeGreaterThan(1);
    process.kill(postmaster, "SIGKILL");

    // While it is down the API answers 503 with a reason, never 500 or a hang. A fresh
    // connection: the upload's keep-alive socket may be closing at this very moment.
    const during = await getFresh(`${api}/api/v0/pins?limit=1`);
    expect([200, 503]).toContain(during.status);
    if (during.status === 503) {
      expect(JSON.parse(during.body)).toMatchObject({ error: { reason: "DATABASE_UNAVAILABLE" } });
    }

    await waitFor(
      "an upload to succeed after the restart",
      async () => ((await upload(api, `after ${Date.now()}`)) === 201 ? true : undefined),
      90_000,
      dev,
    );
    expect(dev.output()).toMatch(/postgres │ exited \(SIGKILL\); restarting in/);
    const newPid = Number(
      (await readFile(join(dev.cwd, ".quasar", "pg", "postmaster.pid"), "utf8")).split("\n")[0],
    );
    expect(newPid).not.toBe(postmaster);
    await stopDev(dev);
  }, 600_000);

  it("a second Ctrl-C exits at once and still stops its PostgreSQL and anvil", async () => {
    const dev = await startDev();
    await ready(dev);
    const postmaster = Number(
      (await readFile(join(dev.cwd, ".quasar", "pg", "postmaster.pid"), "utf8")).split("\n")[0],
    );
    const descendants = await descendantsOf(dev.child.pid as number);
    // Its PostgreSQL and anvil are among them, with the API, the indexer and the reconciler.
    expect(descendants).toContain(postmaster);
    expect(descendants.length).toBeGreaterThanOrEqual(5);
    expect(await survivors(descendants, 0)).toContainEqual(expect.stringMatching(/\/anvil /));

    const exited = once(dev.child, "exit");
    dev.child.kill("SIGINT");
    // The first stops the parts in order (API, reconciler, indexer, then the database and the
    // chain); the second, while that runs, ends the CLI at once.
    await new Promise((resolve) => setTimeout(resolve, 100));
    dev.child.kill("SIGINT");
    const [code] = (await exited) as [number | null];
    expect(code).toBe(130);
    // PostgreSQL and anvil have no parent left to notice the CLI is gone: only its signal
    // stops them (the supervised parts see their stdin close).
    const left = await survivors(descendants, 30_000);
    // Left running they would hold this machine's ports for every later suite.
    for (const line of left) process.kill(Number(line.split(" ")[0]), "SIGKILL");
    expect(left, dev.output().slice(-3000)).toEqual([]);
  }, 600_000);

  it("never takes another PostgreSQL on the port it picked for its own", async () => {
    // Two stacks can pick the same free port at once; the one whose server cannot bind it
    // must see that the server answering there is not its own (then dev picks another port).
    const [first, second] = await Promise.all([devDir(), devDir()]);
    const port = await getPort({ port: portNumbers(5500, 5599), host: "127.0.0.1" });
    const log = new PassThrough().resume();
    const running = await startEmbeddedPostgres({ dataDir: join(first, "pg"), port, log });
    try {
      await expect(
        startEmbeddedPostgres({ dataDir: join(second, "pg"), port, log }),
      ).rejects.toBeInstanceOf(PortTakenError);
    } finally {
      await running.stop();
    }
  }, 300_000);

  it("never prints DATABASE_URL's password; dev.env says it holds it and is 0600", async () => {
    // A database of its own on the shared server, so this stack's chain 31337 and schemas
    // touch nothing another suite uses. The server trusts local connections, so any password
    // works: what matters is where the string ends up.
    const name = `quasar_devsecret_${Date.now().toString(36)}`;
    const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
    await admin.query(`CREATE DATABASE ${name}`);
    const secret = `S3cretPw${Date.now()}`;
    const url = new URL(TEST_DATABASE_URL);
    url.password = secret;
    url.pathname = `/${name}`;
    try {
      const dev = await startDev({ DATABASE_URL: url.toString() });
      await ready(dev);
      expect(dev.output()).toMatch(/database {3}postgresql:\/\/postgres:\*\*\*\*@127\.0\.0\.1/);
      expect(dev.output()).not.toContain(secret);

      const path = join(dev.cwd, ".quasar", "dev.env");
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const text = await readFile(path, "utf8");
      expect(text).toMatch(/^# .*\n# May hold a secret \(the password in DATABASE_URL\)/);
      // The other commands still find the database through it.
      expect((await devEnv(dev)).DATABASE_URL).toBe(url.toString());
      await stopDev(dev);
      expect(dev.output()).not.toContain(secret);
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
      await admin.end();
    }
  }, 600_000);
});
