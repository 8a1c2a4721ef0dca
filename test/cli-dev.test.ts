/**
 * `quasar dev` as a new user meets it: a fresh directory, no environment but PATH and HOME.
 * It must come up on its own (embedded PostgreSQL, anvil with the contracts, indexer,
 * reconciler, API, embedded IPFS), take an upload, see the upload's PinHash confirmed on the
 * local chain, stop cleanly on SIGINT leaving no process behind, and reuse its data on a
 * second run.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { alive, descendantsOf, survivors } from "./harness/processes.js";

const ROOT = join(import.meta.dirname, "..");
const NODE = join(ROOT, "node_modules", ".bin", "node");
const QUASAR = join(ROOT, "bin", "quasar.js");

let cwd: string;
const started: ChildProcess[] = [];

/** PATH and HOME only, as on a fresh machine. */
const userEnv = () => ({ PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "" });

type Dev = { child: ChildProcess; stdout: () => string; stderr: () => string };

function startDev(): Dev {
  const child = spawn(NODE, [QUASAR, "dev"], {
    cwd,
    env: userEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  started.push(child);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-200_000);
  });
  return { child, stdout: () => stdout, stderr: () => stderr };
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  dev?: Dev,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (dev && dev.child.exitCode !== null) {
      throw new Error(
        `quasar dev exited (${dev.child.exitCode}) waiting for ${what}\n${dev.stderr().slice(-5000)}`,
      );
    }
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}\n${dev?.stderr().slice(-5000) ?? ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function stopDev(dev: Dev, signal: NodeJS.Signals = "SIGINT"): Promise<number[]> {
  const descendants = await descendantsOf(dev.child.pid as number);
  const exited = once(dev.child, "exit");
  dev.child.kill(signal);
  const timer = setTimeout(() => dev.child.kill("SIGKILL"), 90_000);
  const [code] = (await exited) as [number | null];
  clearTimeout(timer);
  expect(code, dev.stderr().slice(-3000)).toBe(0);
  return descendants;
}

async function devEnv(): Promise<Record<string, string>> {
  const text = await readFile(join(cwd, ".quasar", "dev.env"), "utf8");
  return Object.fromEntries(
    text
      .split("\n")
      .filter((line) => line.includes("=") && !line.startsWith("#"))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );
}

beforeAll(async () => {
  cwd = await mkdtemp(join(tmpdir(), "quasar-dev-"));
  // PostgreSQL runs as an unprivileged user when we are root: it must reach .quasar/pg.
  await chmod(cwd, 0o755);
});

afterAll(async () => {
  // After a failed test `quasar dev` may still run: stop it as a user would (SIGINT), and
  // kill whatever of its tree is left after that, so no anvil or postgres outlives the suite.
  for (const child of started) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const tree = await descendantsOf(child.pid as number);
    const exited = once(child, "exit");
    child.kill("SIGINT");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 30_000))]);
    for (const pid of [...tree, child.pid as number].filter(alive)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  await rm(cwd, { recursive: true, force: true });
});

describe("quasar dev", () => {
  let cid: string;

  it("comes up on a fresh directory, confirms an upload's PinHash, and stops leaving nothing behind", async () => {
    const dev = startDev();
    await waitFor(
      "ready",
      async () => (dev.stdout().includes("\nready\n") ? true : undefined),
      240_000,
      dev,
    );
    expect(dev.stdout()).toMatch(/npx quasar contracts pin/);
    const env = await devEnv();
    const api = `http://127.0.0.1:${env.QUASAR_API_PORT}`;
    const rpc = (JSON.parse(env.QUASAR_CHAINS as string) as { rpc: string }[])[0]?.rpc as string;

    // Upload through the API, as the printed example does.
    const form = new FormData();
    form.append("entry", new Blob([`hello quasar ${Date.now()}`]), "hello.txt");
    const upload = await fetch(`${api}/api/v0/add`, { method: "POST", body: form });
    expect(upload.status).toBe(201);
    cid = (await upload.text()).trim();
    // The original Quasar's answer (Kubo's defaults): a CIDv0, which the PinHash then records.
    expect(cid).toMatch(/^Qm/);

    // Emit PinHash through the CLI from another "terminal": it finds the stack via .quasar/dev.env.
    const pin = spawn(NODE, [QUASAR, "contracts", "pin", cid], {
      cwd,
      env: userEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let pinOutput = "";
    pin.stdout.on("data", (chunk: Buffer) => {
      pinOutput += chunk.toString();
    });
    pin.stderr.on("data", (chunk: Buffer) => {
      pinOutput += chunk.toString();
    });
    const [pinCode] = (await once(pin, "exit")) as [number | null];
    expect(pinCode, pinOutput).toBe(0);
    expect(pinOutput).toMatch(/PinHash × 1/);

    // Finality: mine well past the indexer's 30-block depth instead of waiting a minute.
    const mine = () =>
      fetch(rpc, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "anvil_mine", params: ["0x50"] }),
      });
    const status = await waitFor(
      "the PinHash to be confirmed and pinned",
      async () => {
        await mine();
        const response = await fetch(`${api}/api/v0/pins/${cid}`);
        if (!response.ok) return undefined;
        const body = (await response.json()) as {
          desired: boolean;
          reasons: { kind: string }[];
          backends: { status: string }[];
        };
        return body.reasons.some((reason) => reason.kind === "confirmed") &&
          body.backends.some((backend) => backend.status === "pinned")
          ? body
          : undefined;
      },
      180_000,
      dev,
    );
    expect(status.desired).toBe(true);

    // The terminal: one readable line per event, the part first (no colour: not a terminal);
    // PostgreSQL's own chatter only with --verbose; the dashboard among the URLs.
    expect(dev.stdout()).toMatch(/^reconciler │ \d\d:\d\d:\d\d\.\d{3} INFO {2}reconciler running/m);
    expect(dev.stdout()).not.toMatch(/"level":\d+/);
    expect(dev.stdout()).not.toContain("\x1b[");
    expect(`${dev.stdout()}${dev.stderr()}`).not.toMatch(/^postgres │ /m);
    expect(dev.stdout()).toMatch(/^indexer +│ .*Started live indexing/m);
    expect(dev.stdout()).not.toMatch(/Indexed block .*event_count=0/);
    expect(`${dev.stdout()}${dev.stderr()}`).not.toContain("DeprecationWarning");
    // A fresh stack's reconciler waits for the indexer's tables without an error per step.
    expect(dev.stdout()).not.toContain("reconcile step failed");
    expect(dev.stdout()).toMatch(/^ {2}dashboard +http:\/\/127\.0\.0\.1:\d+\/ui$/m);

    // `quasar status` from another terminal sees the same.
    const statusRun = spawn(NODE, [QUASAR, "status", "--json"], {
      cwd,
      env: userEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let statusJson = "";
    statusRun.stdout.on("data", (chunk: Buffer) => {
      statusJson += chunk.toString();
    });
    await once(statusRun, "exit");
    const report = JSON.parse(statusJson) as {
      desired: { confirmed: number };
      backends: { pinned: number }[];
    };
    expect(report.desired.confirmed).toBeGreaterThanOrEqual(1);
    expect(report.backends[0]?.pinned).toBeGreaterThanOrEqual(1);

    const descendants = await stopDev(dev);
    // postgres, anvil, indexer (and Ponder), reconciler, api: all were children…
    expect(descendants.length).toBeGreaterThanOrEqual(5);
    // …and none is left.
    expect(await survivors(descendants)).toEqual([]);
  }, 600_000);

  it("reuses the data on a second run, and stops on a hang-up", async () => {
    const dev = startDev();
    await waitFor(
      "ready",
      async () => (dev.stdout().includes("\nready\n") ? true : undefined),
      240_000,
      dev,
    );
    expect(dev.stderr()).toContain("contracts already deployed");
    const env = await devEnv();
    const response = await fetch(`http://127.0.0.1:${env.QUASAR_API_PORT}/api/v0/pins/${cid}`);
    const body = (await response.json()) as { desired: boolean; reasons: { kind: string }[] };
    expect(body.desired).toBe(true);
    expect(body.reasons.map((reason) => reason.kind)).toContain("confirmed");
    // A closed terminal (SIGHUP) stops everything as Ctrl-C does: anvil and PostgreSQL run
    // in process groups of their own and would outlive a `quasar dev` that just died.
    const descendants = await stopDev(dev, "SIGHUP");
    expect(await survivors(descendants)).toEqual([]);
  }, 600_000);
});
