import { readFile, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Command } from "commander";
import getPort, { portNumbers } from "get-port";
import { type Address, getAddress } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { LOCAL_REGISTRY_ADDRESS } from "@/core/config/schema.js";
import {
  type ChainClients,
  connectChain,
  deployRegistry,
  deployStorage,
  hasCode,
  isRegistered,
  setRegistration,
} from "../chain-ops.js";
import { DEV_DIR, DEV_REGISTRY_KEY, DEV_STORAGE_KEY, writeDevEnv } from "../dev-env.js";
import { PortTakenError, StartupError } from "../errors.js";
import { chooseLogFormat, useColor } from "../log-format.js";
import { maskUrl } from "../mask.js";
import { startLocalChain } from "../runtime/anvil.js";
import { startEmbeddedPostgres } from "../runtime/postgres.js";
import { superviseChildren } from "../runtime/supervisor.js";
import { createTailBuffer } from "../runtime/tail-buffer.js";
import { addSettingOptions, resolveConfig, settingFlagsFrom } from "../settings.js";
import { ANVIL_DEFAULT_KEY } from "../signer.js";
import { PARTS, partSpecs } from "./start.js";

/**
 * `quasar dev`: the whole stack on a fresh machine with nothing configured. Everything it
 * keeps lives under `./.quasar` (database, chain state, IPFS blocks), so a second run in the
 * same directory continues where the first stopped:
 * - PostgreSQL: embedded under .quasar/pg, unless DATABASE_URL is set;
 * - a local anvil chain (31337, one block a second) under .quasar/anvil, with the Registry at
 *   the default registry address and one Storage contract deployed and registered once;
 * - the indexer, the reconciler and the API as supervised child processes;
 * - the embedded helia backend (QUASAR_BACKENDS' default, .quasar/ipfs).
 * Ports: the usual ones when free, else the next free ones; all are printed.
 */
const LOCAL_CHAIN_ID = 31337;
const DEV_STATE_FILE = "dev.json";

/** What `quasar dev` deployed, so a second run finds it even off the default addresses. */
type DevState = { registry?: string; storage?: string };

async function readDevState(dir: string): Promise<DevState> {
  try {
    return JSON.parse(await readFile(join(dir, DEV_STATE_FILE), "utf8")) as DevState;
  } catch {
    return {};
  }
}

/** Registry at the default address (deployed by account 0's first transaction) and one registered Storage. */
async function ensureContracts(
  clients: ChainClients,
  dir: string,
): Promise<{ registry: Address; storage: Address; deployed: string[] }> {
  const deployed: string[] = [];
  const state = await readDevState(dir);
  // On a fresh chain account 0's first deployment lands at the default registry address.
  let registry = getAddress(state.registry ?? LOCAL_REGISTRY_ADDRESS);
  if (!(await hasCode(clients, registry))) {
    const result = await deployRegistry(clients);
    registry = result.address;
    deployed.push(`Registry ${registry}`);
  }
  let storage: Address | undefined = state.storage ? getAddress(state.storage) : undefined;
  if (storage === undefined || !(await hasCode(clients, storage))) {
    storage = (await deployStorage(clients)).address;
    deployed.push(`Storage ${storage}`);
  }
  await writeFile(join(dir, DEV_STATE_FILE), `${JSON.stringify({ registry, storage }, null, 2)}\n`);
  if (!(await isRegistered(clients, registry, storage))) {
    await setRegistration(clients, registry, storage, "register");
    deployed.push(`registered ${storage}`);
  }
  return { registry, storage, deployed };
}

async function waitForHttp(url: string, signal: AbortSignal, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !signal.aborted) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (response.ok) return true;
    } catch {
      // not up yet
    }
    await sleep(250);
  }
  return false;
}

/**
 * Starts the embedded PostgreSQL on a free port of 5433–5499. A port found free can be taken
 * by another `quasar dev` before our server binds it; then the next free one is tried.
 */
async function startOnFreePort<T>(start: (port: number) => Promise<T>): Promise<T> {
  const tried: number[] = [];
  for (;;) {
    const port = await getPort({
      port: portNumbers(5433, 5499),
      host: "127.0.0.1",
      exclude: tried,
    });
    try {
      return await start(port);
    } catch (error) {
      if (!(error instanceof PortTakenError) || tried.length >= 4) throw error;
      tried.push(port);
    }
  }
}

/** Ponder's line for a block without events: one a second on anvil, shown only with --verbose. */
function isEmptyBlockLine(line: string): boolean {
  return /\bIndexed block\b.*\bevent_count=0\b/.test(line);
}

function banner(info: {
  apiUrl: string;
  rpcUrl: string;
  indexerUrl: string;
  metricsUrl: string | undefined;
  databaseUrl: string;
  embeddedDatabase: boolean;
  registry: Address;
  storage: Address;
}): string {
  return [
    "",
    "Quasar is running (Ctrl-C stops everything).",
    "",
    `  dashboard  ${info.apiUrl}/ui`,
    `  API        ${info.apiUrl}   (docs: ${info.apiUrl}/docs)`,
    `  chain      ${info.rpcUrl}   (anvil, chain 31337, one block a second)`,
    `  indexer    ${info.indexerUrl}/status`,
    ...(info.metricsUrl ? [`  metrics    ${info.metricsUrl}/metrics`] : []),
    `  database   ${maskUrl(info.databaseUrl)}${info.embeddedDatabase ? "   (embedded, .quasar/pg)" : ""}`,
    `  registry   ${info.registry}`,
    `  storage    ${info.storage}   (registered)`,
    "",
    "Try it:",
    `  cid=$(echo "hello quasar" | curl -s -F entry=@- ${info.apiUrl}/api/v0/add)`,
    "  npx quasar contracts pin $cid",
    `  curl -s ${info.apiUrl}/api/v0/pins/$cid     # or: npx quasar status`,
    "",
  ].join("\n");
}

export function registerDevCommand(program: Command, signal: AbortSignal): void {
  addSettingOptions(
    program
      .command("dev")
      .description(
        "Run the whole stack on embedded defaults: PostgreSQL (unless DATABASE_URL is set), a local anvil chain with the contracts, the indexer, the reconciler, the API and an embedded IPFS node. Data under ./.quasar.",
      )
      .option(
        "--verbose",
        "also show PostgreSQL's and anvil's own output, and the indexer's blocks without events",
      )
      .option("--pretty", "render the parts' logs for a person (the default here)")
      .option("--json", "the parts' raw JSON log lines instead"),
  ).action(async (options: Record<string, unknown>) => {
    const cwd = process.cwd();
    const dir = resolve(cwd, DEV_DIR);
    const flags = settingFlagsFrom(options);
    // Validate what the user gave before starting anything.
    const given = resolveConfig(process.env, flags);
    const log = process.stderr;
    // PostgreSQL's and anvil's chatter only with --verbose; their last lines are shown if
    // either fails to start.
    const noise = options.verbose === true ? undefined : createTailBuffer();
    const cleanups: (() => Promise<void>)[] = [];
    const cleanup = async () => {
      for (const step of cleanups.reverse()) await step().catch(() => {});
    };
    try {
      let databaseUrl = given.config.DATABASE_URL;
      const embeddedDatabase = given.sources.DATABASE_URL === "default";
      if (embeddedDatabase) {
        const database = await startOnFreePort(async (port) => {
          log.write(`starting PostgreSQL on port ${port} (.quasar/pg)\n`);
          return startEmbeddedPostgres({
            dataDir: join(dir, "pg"),
            port,
            log,
            ...(noise ? { output: noise } : {}),
          });
        });
        cleanups.push(() => database.stop());
        databaseUrl = database.url;
      }
      if (signal.aborted) return;

      const rpcPort = await getPort({ port: portNumbers(8545, 8599), host: "127.0.0.1" });
      log.write(`starting anvil on port ${rpcPort} (.quasar/anvil)\n`);
      const chain = await startLocalChain({
        dir: join(dir, "anvil"),
        port: rpcPort,
        log,
        ...(noise ? { output: noise } : {}),
      });
      cleanups.push(() => chain.stop());
      if (signal.aborted) return;

      const clients = await connectChain(
        chain.rpcUrl,
        privateKeyToAccount(ANVIL_DEFAULT_KEY),
        LOCAL_CHAIN_ID,
      );
      const { registry, storage, deployed } = await ensureContracts(clients, dir);
      log.write(
        deployed.length > 0 ? `deployed: ${deployed.join(", ")}\n` : "contracts already deployed\n",
      );

      const pick = async (
        name: "QUASAR_API_PORT" | "QUASAR_INDEXER_PORT" | "QUASAR_METRICS_PORT",
      ) => {
        if (given.sources[name] !== "default") return String(given.config[name]);
        const preferred = given.config[name];
        if (preferred === 0) return "0";
        return String(
          await getPort({ port: portNumbers(preferred, preferred + 50), host: "127.0.0.1" }),
        );
      };
      const ports = {
        QUASAR_API_PORT: await pick("QUASAR_API_PORT"),
        QUASAR_INDEXER_PORT: await pick("QUASAR_INDEXER_PORT"),
        QUASAR_METRICS_PORT: await pick("QUASAR_METRICS_PORT"),
      };
      const settings: Record<string, string> = {
        DATABASE_URL: databaseUrl,
        QUASAR_CHAINS: JSON.stringify([
          {
            id: LOCAL_CHAIN_ID,
            rpc: chain.rpcUrl,
            registry: registry.toLowerCase(),
            startBlock: 0,
          },
        ]),
        ...ports,
      };
      const { env, config } = resolveConfig({ ...process.env, ...settings }, flags);
      await writeDevEnv(cwd, {
        ...settings,
        QUASAR_INDEXER_SCHEMA: config.QUASAR_INDEXER_SCHEMA,
        QUASAR_RECONCILER_SCHEMA: config.QUASAR_RECONCILER_SCHEMA,
        [DEV_REGISTRY_KEY]: registry,
        [DEV_STORAGE_KEY]: storage,
      });
      cleanups.push(() => rm(join(dir, "dev.env"), { force: true }));
      if (signal.aborted) return;

      const verbose = options.verbose === true;
      const children = partSpecs(
        PARTS,
        env,
        cwd,
        config,
        // Ponder's pg client warns of a deprecation on every start: noise to a user.
        verbose
          ? {}
          : { indexer: { NODE_OPTIONS: `${env.NODE_OPTIONS ?? ""} --no-deprecation`.trim() } },
      ).map((spec) =>
        spec.name === "indexer" && !verbose ? { ...spec, hide: isEmptyBlockLine } : spec,
      );
      const supervisor = superviseChildren({
        children,
        signal,
        format: chooseLogFormat(options, "pretty"),
        // The parts log to stdout: colour when that is a terminal.
        color: useColor(process.stdout),
      });
      const host = config.QUASAR_API_HOST === "0.0.0.0" ? "127.0.0.1" : config.QUASAR_API_HOST;
      const apiUrl = `http://${host}:${config.QUASAR_API_PORT}`;
      const indexerUrl = `http://${host}:${config.QUASAR_INDEXER_PORT}`;
      if (await waitForHttp(`${apiUrl}/healthz`, signal, 180_000)) {
        // Ready means the chain is being indexed too, so an example PinHash is seen at once.
        if (!(await waitForHttp(`${indexerUrl}/ready`, signal, 120_000)) && !signal.aborted) {
          log.write("the indexer is not ready yet; see the indexer │ lines\n");
        }
        process.stdout.write(
          banner({
            apiUrl,
            rpcUrl: chain.rpcUrl,
            indexerUrl,
            metricsUrl:
              config.QUASAR_METRICS_PORT === 0
                ? undefined
                : `http://127.0.0.1:${config.QUASAR_METRICS_PORT}`,
            databaseUrl,
            embeddedDatabase,
            registry,
            storage,
          }),
        );
        process.stdout.write("ready\n");
      } else if (!signal.aborted) {
        log.write("the API did not answer within 3 minutes; see the api │ lines above\n");
      }
      await supervisor.done;
    } catch (error) {
      if (noise && error instanceof StartupError) {
        for (const line of noise.lines()) log.write(`${line}\n`);
      }
      if (error instanceof StartupError || !signal.aborted) throw error;
    } finally {
      log.write("stopping\n");
      await cleanup();
      log.write("stopped\n");
    }
  });
}
