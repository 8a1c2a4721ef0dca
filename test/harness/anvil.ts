/**
 * A real anvil per test suite, plus helpers to deploy and drive Quasar's contracts.
 *
 * ```ts
 * const anvil = await startAnvil();
 * afterAll(() => anvil.stop());
 * const { registry, storage } = await deployContracts(anvil);
 * ```
 *
 * anvil runs under a tiny shell wrapper that kills it as soon as our stdin pipe closes, so
 * it cannot outlive the test process even when the worker is killed with SIGKILL.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import getPort from "get-port";
import {
  type Account,
  type Address,
  type Chain,
  createPublicClient,
  createTestClient,
  createWalletClient,
  defineChain,
  getAddress,
  type Hash,
  type Hex,
  http,
  type PublicClient,
  type TestClient,
  type Transport,
  type WalletClient,
} from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { RegistryAbi, RegistryBytecode, StorageAbi, StorageBytecode } from "@/abis/index.js";
import { safeKill, TETHER_WRAPPER, type Tethered, track, untrack } from "./tethered.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * The native anvil binary. node_modules/.bin/anvil is a Node shim that spawns it as a
 * grandchild, which signals sent to the shim do not always reach; run the binary directly.
 */
function anvilBinary(): string {
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const native = join(
    ROOT,
    "node_modules",
    "@foundry-rs",
    `anvil-${process.platform}-${arch}`,
    "bin",
    "anvil",
  );
  return existsSync(native) ? native : join(ROOT, "node_modules", ".bin", "anvil");
}

/** anvil's default accounts (mnemonic "test test … junk"); account 0 deploys and owns everything. */
export const ANVIL_ACCOUNTS = [
  {
    address: "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    privateKey: "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
  },
  {
    address: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    privateKey: "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  },
  {
    address: "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    privateKey: "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
  },
] as const satisfies readonly { address: Address; privateKey: Hex }[];

/** Where the first contract deployed by account 0 on a fresh anvil lands (nonce 0). */
export const FIRST_DEPLOYMENT_ADDRESS: Address = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

export type StartAnvilOptions = {
  /** Seconds between blocks (interval mining, `--block-time`). Default: automine, one block per transaction. */
  blockTime?: number;
  /** `--chain-id`. Default 31337. */
  chainId?: number;
};

/** One transaction to replay into a reorged chain: a raw signed tx or a request object, and its block offset. */
export type ReorgTransaction = [tx: Hex | Record<string, unknown>, blockOffset: number];

/** The anvil-specific actions viem's test client lacks. */
export type AnvilExtraActions = {
  /** `anvil_reorg`: replaces the last `depth` blocks with new ones, optionally containing `transactions`. */
  reorg(args: { depth: number; transactions?: ReorgTransaction[] }): Promise<void>;
  /** `anvil_rollback`: drops the last `depth` blocks without replacing them. */
  rollback(args: { depth: number }): Promise<void>;
};

export type AnvilTestClient = TestClient<"anvil", Transport, Chain, Account, true> &
  AnvilExtraActions;

/** A running anvil and viem clients bound to it. */
export type Anvil = {
  rpcUrl: string;
  port: number;
  chainId: number;
  chain: Chain;
  /** Account 0, which deploys and owns the contracts. */
  account: Account;
  /** mine, snapshot, revert, setIntervalMining… plus reorg/rollback. */
  testClient: AnvilTestClient;
  publicClient: PublicClient<Transport, Chain>;
  walletClient: WalletClient<Transport, Chain, Account>;
  /**
   * Freezes anvil (SIGSTOP): its socket still accepts connections but nothing answers, as a
   * node that stalls (GC pause, overloaded host, network black hole) looks to a client.
   */
  pause(): void;
  /** Thaws a paused anvil (SIGCONT); interval mining resumes from the current time. */
  resume(): void;
  /** Kills anvil and waits for it to exit. Safe to call twice. */
  stop(): Promise<void>;
};

const START_ATTEMPTS = 3;
const READY_TIMEOUT_MS = 20_000;

/** Starts anvil on a free port and waits until it answers JSON-RPC. */
export async function startAnvil(options: StartAnvilOptions = {}): Promise<Anvil> {
  const chainId = options.chainId ?? 31337;
  let lastError: unknown;
  // Another process may grab the free port between getPort and anvil's bind: retry.
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await getPort({ host: "127.0.0.1" });
    try {
      return await startOn(port, chainId, options.blockTime);
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`anvil did not start after ${START_ATTEMPTS} attempts`, { cause: lastError });
}

async function startOn(
  port: number,
  chainId: number,
  blockTime: number | undefined,
): Promise<Anvil> {
  const args = ["--host", "127.0.0.1", "--port", String(port), "--chain-id", String(chainId)];
  args.push("--silent");
  if (blockTime !== undefined) args.push("--block-time", String(blockTime));
  const wrapper = spawn("sh", ["-c", TETHER_WRAPPER, anvilBinary(), ...args], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  const proc: Tethered = { wrapper, pid: undefined };
  track(proc);

  let stderr = "";
  wrapper.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  let stdout = "";
  wrapper.stdout?.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    const pid = Number.parseInt(stdout, 10);
    if (stdout.includes("\n") && Number.isSafeInteger(pid)) proc.pid = pid;
  });
  const exited = once(wrapper, "exit");
  let hasExited = false;
  void exited.then(() => {
    hasExited = true;
  });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (!hasExited) {
        // A paused anvil would hold the SIGTERM pending until the SIGKILL fallback.
        if (proc.pid) safeKill(proc.pid, "SIGCONT");
        wrapper.stdin?.end();
        const timer = setTimeout(() => {
          if (proc.pid) safeKill(proc.pid, "SIGKILL");
          wrapper.kill("SIGKILL");
        }, 5_000);
        await exited;
        clearTimeout(timer);
      } else {
        wrapper.stdin?.end();
      }
      untrack(proc);
    })();
    return stopped;
  };

  const rpcUrl = `http://127.0.0.1:${port}`;
  try {
    await waitUntilReady(rpcUrl, () => hasExited);
  } catch (error) {
    await stop();
    throw new Error(`anvil failed to start on port ${port}: ${stderr.trim() || String(error)}`, {
      cause: error,
    });
  }

  try {
    const signal = (name: NodeJS.Signals) => {
      if (proc.pid === undefined) throw new Error("anvil's pid is not known yet");
      process.kill(proc.pid, name);
    };
    return {
      rpcUrl,
      port,
      chainId,
      stop,
      pause: () => signal("SIGSTOP"),
      resume: () => signal("SIGCONT"),
      ...createClients(rpcUrl, chainId),
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function createClients(rpcUrl: string, chainId: number) {
  const chain = defineChain({
    id: chainId,
    name: `anvil-${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
  const account = privateKeyToAccount(ANVIL_ACCOUNTS[0].privateKey);
  const transport = http(rpcUrl);
  // Short polling keeps receipt waits fast under interval mining.
  const pollingInterval = 100;
  const testClient = createTestClient({
    mode: "anvil",
    chain,
    transport,
    account,
    pollingInterval,
  }).extend(
    (client): AnvilExtraActions => ({
      async reorg({ depth, transactions = [] }) {
        await client.request<{ Parameters: [number, ReorgTransaction[]]; ReturnType: null }>({
          method: "anvil_reorg",
          params: [depth, transactions],
        });
      },
      async rollback({ depth }) {
        await client.request<{ Parameters: [number]; ReturnType: null }>({
          method: "anvil_rollback",
          params: [depth],
        });
      },
    }),
  );
  // cacheTime 0: tests read the block number right after mining; a cached value would lie.
  const publicClient = createPublicClient({ chain, transport, pollingInterval, cacheTime: 0 });
  const walletClient = createWalletClient({ chain, transport, account, pollingInterval });

  return { chain, account, testClient, publicClient, walletClient };
}

async function waitUntilReady(rpcUrl: string, hasExited: () => boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (hasExited()) throw new Error("anvil exited before it was ready");
    try {
      const response = await fetch(rpcUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }),
        signal: AbortSignal.timeout(1_000),
      });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`anvil did not answer within ${READY_TIMEOUT_MS} ms`);
}

/** Waits for a transaction and throws if it reverted. */
async function confirm(anvil: Anvil, hash: Hash, what: string) {
  const receipt = await anvil.publicClient.waitForTransactionReceipt({ hash });
  if (receipt.status !== "success") throw new Error(`${what} reverted (tx ${hash})`);
  return receipt;
}

/** Deploys a Registry from account 0. On a fresh anvil it lands at FIRST_DEPLOYMENT_ADDRESS. */
export async function deployRegistry(anvil: Anvil): Promise<Address> {
  const hash = await anvil.walletClient.deployContract({
    abi: RegistryAbi,
    bytecode: RegistryBytecode,
  });
  const receipt = await confirm(anvil, hash, "Registry deployment");
  if (!receipt.contractAddress) throw new Error("Registry deployment returned no address");
  return getAddress(receipt.contractAddress);
}

/** Deploys one more Storage contract from account 0 (its owner). Not registered. */
export async function deployStorage(anvil: Anvil): Promise<Address> {
  const hash = await anvil.walletClient.deployContract({
    abi: StorageAbi,
    bytecode: StorageBytecode,
  });
  const receipt = await confirm(anvil, hash, "Storage deployment");
  if (!receipt.contractAddress) throw new Error("Storage deployment returned no address");
  return getAddress(receipt.contractAddress);
}

/** Registers `address` in `registry` (as account 0, the owner); resolves once mined. */
export async function register(anvil: Anvil, registry: Address, address: Address): Promise<Hash> {
  const hash = await anvil.walletClient.writeContract({
    address: registry,
    abi: RegistryAbi,
    functionName: "registerContract",
    args: [address],
  });
  await confirm(anvil, hash, `registerContract(${address})`);
  return hash;
}

/** Unregisters `address` from `registry` (as account 0, the owner); resolves once mined. */
export async function unregister(anvil: Anvil, registry: Address, address: Address): Promise<Hash> {
  const hash = await anvil.walletClient.writeContract({
    address: registry,
    abi: RegistryAbi,
    functionName: "unregisterContract",
    args: [address],
  });
  await confirm(anvil, hash, `unregisterContract(${address})`);
  return hash;
}

/**
 * Deploys Registry (first, so a fresh anvil puts it at the default local registry address)
 * and one Storage, and registers the storage unless `register: false`.
 */
export async function deployContracts(
  anvil: Anvil,
  options: { register?: boolean } = {},
): Promise<{ registry: Address; storage: Address }> {
  const registry = await deployRegistry(anvil);
  const storage = await deployStorage(anvil);
  if (options.register ?? true) await register(anvil, registry, storage);
  return { registry, storage };
}

/** Emits PinHash(cid) from `storage` via registerData; resolves once mined. */
export async function registerData(
  anvil: Anvil,
  storage: Address,
  key: Hex,
  cid: string,
): Promise<Hash> {
  const hash = await anvil.walletClient.writeContract({
    address: storage,
    abi: StorageAbi,
    functionName: "registerData",
    args: [key, cid],
  });
  await confirm(anvil, hash, "registerData");
  return hash;
}

/**
 * Emits each batch as one pinMany transaction (automine: one block each), sent without
 * waiting for each receipt; resolves once the last is mined. For histories of many blocks.
 */
export async function pinBatches(anvil: Anvil, storage: Address, batches: string[][]) {
  let nonce = await anvil.publicClient.getTransactionCount({ address: anvil.account.address });
  let last: Hash | undefined;
  for (const cids of batches) last = await sendPinMany(anvil.walletClient, storage, cids, nonce++);
  if (last) await confirm(anvil, last, "pinMany");
}

/**
 * Sends one pinMany transaction with an explicit nonce and gas, without waiting for it: a
 * sender of many transactions numbers them itself. Explicit gas skips estimation, which
 * would execute every transaction twice; an event costs about 4,500.
 */
export function sendPinMany(
  walletClient: WalletClient<Transport, Chain, Account>,
  storage: Address,
  cids: string[],
  nonce: number,
): Promise<Hash> {
  return walletClient.writeContract({
    address: storage,
    abi: StorageAbi,
    functionName: "pinMany",
    args: [cids],
    gas: BigInt(cids.length) * 12_000n + 200_000n,
    nonce,
  });
}

/** Emits one PinHash per CID from `storage` in one transaction; resolves once mined. */
export async function pinMany(anvil: Anvil, storage: Address, cids: string[]): Promise<Hash> {
  const hash = await anvil.walletClient.writeContract({
    address: storage,
    abi: StorageAbi,
    functionName: "pinMany",
    args: [cids],
  });
  await confirm(anvil, hash, "pinMany");
  return hash;
}
