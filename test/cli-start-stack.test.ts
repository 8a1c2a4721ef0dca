/**
 * `quasar start` in its production shape: real Postgres, a real anvil with the contracts,
 * the three parts as supervised children configured by environment and flags only. A part
 * killed from outside (SIGKILL: a real crash, not a mock) is restarted; SIGTERM stops
 * everything and leaves no process behind.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import getPort from "get-port";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Anvil, deployContracts, startAnvil } from "./harness/anvil.js";
import { purgeSyncCache, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";
import { alive, commandLine, descendantsOf, survivors } from "./harness/processes.js";

const ROOT = join(import.meta.dirname, "..");

let anvil: Anvil;
let indexerSchema: TestSchema;
let reconcilerSchema: TestSchema;
let cwd: string;
let ipfsDir: string;
let start: ChildProcess | undefined;
let output = "";

/** The live reconciler among `root`'s descendants, other than `previous`. */
async function reconcilerUnder(root: number, previous?: number): Promise<number | undefined> {
  for (const pid of await descendantsOf(root)) {
    if (pid === previous || !alive(pid)) continue;
    if ((await commandLine(pid)).includes("quasar.js reconciler")) return pid;
  }
  return undefined;
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (start?.exitCode !== null && start?.exitCode !== undefined) {
      throw new Error(
        `quasar start exited (${start.exitCode}) waiting for ${what}\n${output.slice(-4000)}`,
      );
    }
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n${output.slice(-4000)}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

beforeAll(async () => {
  anvil = await startAnvil({ chainId: uniqueChainId() });
  indexerSchema = await createTestSchema("qsi");
  reconcilerSchema = await createTestSchema("qsr");
  cwd = await mkdtemp(join(tmpdir(), "quasar-start-"));
  ipfsDir = await mkdtemp(join(tmpdir(), "quasar-start-ipfs-"));
}, 60_000);

afterAll(async () => {
  if (start && start.exitCode === null) start.kill("SIGKILL");
  await anvil?.stop();
  await purgeSyncCache(indexerSchema.databaseUrl, anvil ? [anvil.chainId] : []).catch(() => {});
  await indexerSchema?.drop();
  await reconcilerSchema?.drop();
  await rm(cwd, { recursive: true, force: true });
  await rm(ipfsDir, { recursive: true, force: true });
});

describe("quasar start", () => {
  it("supervises the three parts, restarts a killed one, and stops cleanly on SIGTERM", async () => {
    const { registry } = await deployContracts(anvil);
    const [apiPort, indexerPort, metricsPort] = [await getPort(), await getPort(), await getPort()];
    start = spawn(
      join(ROOT, "node_modules", ".bin", "node"),
      [
        join(ROOT, "bin", "quasar.js"),
        "start",
        "--api-port",
        String(apiPort),
        "--indexer-port",
        String(indexerPort),
        "--metrics-port",
        String(metricsPort),
        "--backend",
        `helia://${ipfsDir}?offline=true`,
      ],
      {
        cwd,
        env: {
          PATH: process.env.PATH ?? "",
          HOME: process.env.HOME ?? "",
          DATABASE_URL: indexerSchema.databaseUrl,
          QUASAR_INDEXER_SCHEMA: indexerSchema.schema,
          QUASAR_RECONCILER_SCHEMA: reconcilerSchema.schema,
          QUASAR_CHAINS: JSON.stringify([{ id: anvil.chainId, rpc: anvil.rpcUrl, registry }]),
        },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    start.stdout?.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-100_000);
    });
    start.stderr?.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-100_000);
    });
    const startPid = start.pid as number;

    await until("the API", async () =>
      (await fetch(`http://127.0.0.1:${apiPort}/healthz`)).ok ? true : undefined,
    );
    await until("the indexer", async () =>
      (await fetch(`http://127.0.0.1:${indexerPort}/ready`)).status === 200 ? true : undefined,
    );
    await until("the reconciler's metrics", async () =>
      (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).ok ? true : undefined,
    );
    // One log stream, each line named by its part.
    expect(output).toMatch(/^api +│ /m);
    expect(output).toMatch(/^indexer +│ /m);
    expect(output).toMatch(/^reconciler +│ /m);

    // Crash the reconciler from outside.
    const reconcilerPid = await reconcilerUnder(startPid);
    expect(reconcilerPid).toBeDefined();
    process.kill(reconcilerPid as number, "SIGKILL");
    await until("the restart notice", async () =>
      /reconciler +│ exited \(SIGKILL\); restarting in/.test(output) ? true : undefined,
    );
    const restarted = await until("a new reconciler", () =>
      reconcilerUnder(startPid, reconcilerPid),
    );
    expect(restarted).not.toBe(reconcilerPid);
    await until("the restarted reconciler's metrics", async () =>
      (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).ok ? true : undefined,
    );

    const children = await descendantsOf(startPid);
    const exited = once(start, "exit");
    start.kill("SIGTERM");
    const [code] = (await exited) as [number | null];
    expect(code, output.slice(-3000)).toBe(0);
    expect(await survivors(children)).toEqual([]);
  }, 300_000);
});
