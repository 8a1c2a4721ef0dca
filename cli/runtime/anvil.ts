import { type ChildProcess, spawn } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { StartupError } from "../errors.js";
import { anvilBinary } from "./paths.js";
import { exitOf, prefixLines, stopGroup, stopOnForcedExit } from "./processes.js";

/**
 * The local chain of `quasar dev`: anvil with interval mining, its whole state (blocks
 * included) dumped to `<dir>/state.json` on exit and every few seconds, and loaded on the
 * next start, so a second run continues the same chain.
 *
 * Past states are kept in memory only, for the last RECENT_STATES blocks. By default anvil
 * writes each state that leaves its memory window to ~/.foundry/anvil/tmp, and keeps them
 * there even after a clean exit: once about 1,500 blocks are mined, each new block (one a
 * second) adds about 225 KB, so a dev chain left running filled 800 MB an hour. Nothing
 * Quasar runs reads state at an old block (the indexer reads blocks and logs, which stay).
 */
const RECENT_STATES = 256;

export type LocalChain = { rpcUrl: string; port: number; chainId: number; stop(): Promise<void> };

export async function startLocalChain(options: {
  dir: string;
  port: number;
  chainId?: number;
  blockTimeSeconds?: number;
  log: NodeJS.WritableStream;
  /** The child's own output (default: `log`); `quasar dev` hides it unless --verbose. */
  output?: NodeJS.WritableStream;
  /** anvil's environment (default: this process's); a test gives it a HOME of its own. */
  env?: NodeJS.ProcessEnv;
}): Promise<LocalChain> {
  const dir = resolve(options.dir);
  await mkdir(dir, { recursive: true });
  const chainId = options.chainId ?? 31337;
  const child: ChildProcess = spawn(
    anvilBinary(),
    [
      "--host",
      "127.0.0.1",
      "--port",
      String(options.port),
      "--chain-id",
      String(chainId),
      "--block-time",
      String(options.blockTimeSeconds ?? 1),
      "--state",
      join(dir, "state.json"),
      "--state-interval",
      "5",
      "--prune-history",
      String(RECENT_STATES),
      "--silent",
    ],
    { detached: true, stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env },
  );
  // SIGTERM lets anvil dump its state before it exits.
  stopOnForcedExit(child, "SIGTERM");
  prefixLines(child.stdout, "anvil    │ ", options.output ?? options.log);
  prefixLines(child.stderr, "anvil    │ ", options.output ?? options.log);
  let exited = false;
  void exitOf(child).then(() => {
    exited = true;
  });
  const stop = async () => {
    if (exited) return;
    // SIGTERM lets anvil dump its state before it exits.
    await stopGroup(child, { signal: "SIGTERM", timeoutMs: 10_000 });
  };
  const rpcUrl = `http://127.0.0.1:${options.port}`;
  for (let waited = 0; ; waited += 100) {
    if (exited)
      throw new StartupError(`anvil exited during start-up (port ${options.port} taken?)`);
    try {
      const response = await fetch(rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
        signal: AbortSignal.timeout(1_000),
      });
      if (response.ok) break;
    } catch {
      // not listening yet
    }
    if (waited > 30_000) {
      await stop();
      throw new StartupError("anvil did not answer within 30 s");
    }
    await sleep(100);
  }
  return { rpcUrl, port: options.port, chainId, stop };
}
