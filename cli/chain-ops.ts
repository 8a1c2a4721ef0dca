import {
  type Account,
  type Address,
  type Chain,
  createPublicClient,
  createWalletClient,
  defineChain,
  getAddress,
  type Hash,
  http,
  keccak256,
  type PublicClient,
  stringToHex,
  type Transport,
  type WalletClient,
} from "viem";
import { RegistryAbi, RegistryBytecode, StorageAbi, StorageBytecode } from "@/abis/index.js";
import { RpcError, UsageError } from "./errors.js";

/**
 * The operator's transactions against Quasar's contracts, shared by `quasar contracts`
 * and `quasar dev`. Every write waits for its receipt and fails loudly on a revert.
 */
export type ChainClients = {
  chain: Chain;
  publicClient: PublicClient<Transport, Chain>;
  walletClient: WalletClient<Transport, Chain, Account>;
};

export async function connectChain(
  rpc: string,
  account: Account,
  expectedChainId?: number,
): Promise<ChainClients> {
  const probe = createPublicClient({ transport: http(rpc, { retryCount: 1 }) });
  let chainId: number;
  try {
    chainId = await probe.getChainId();
  } catch (error) {
    throw new RpcError(`the chain RPC does not answer`, { cause: error });
  }
  if (expectedChainId !== undefined && chainId !== expectedChainId) {
    throw new UsageError(`the RPC serves chain ${chainId}, not ${expectedChainId}`);
  }
  const chain = defineChain({
    id: chainId,
    name: `chain${chainId}`,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [rpc] } },
  });
  const transport = http(rpc);
  return {
    chain,
    publicClient: createPublicClient({ chain, transport, pollingInterval: 250, cacheTime: 0 }),
    walletClient: createWalletClient({ chain, transport, account, pollingInterval: 250 }),
  };
}

async function confirm(clients: ChainClients, hash: Hash, what: string) {
  const receipt = await clients.publicClient.waitForTransactionReceipt({ hash, timeout: 120_000 });
  if (receipt.status !== "success") throw new RpcError(`${what} reverted (transaction ${hash})`);
  return receipt;
}

export async function deployRegistry(
  clients: ChainClients,
): Promise<{ address: Address; hash: Hash }> {
  const hash = await clients.walletClient.deployContract({
    abi: RegistryAbi,
    bytecode: RegistryBytecode,
  });
  const receipt = await confirm(clients, hash, "Registry deployment");
  if (!receipt.contractAddress) throw new RpcError("Registry deployment returned no address");
  return { address: getAddress(receipt.contractAddress), hash };
}

export async function deployStorage(
  clients: ChainClients,
): Promise<{ address: Address; hash: Hash }> {
  const hash = await clients.walletClient.deployContract({
    abi: StorageAbi,
    bytecode: StorageBytecode,
  });
  const receipt = await confirm(clients, hash, "Storage deployment");
  if (!receipt.contractAddress) throw new RpcError("Storage deployment returned no address");
  return { address: getAddress(receipt.contractAddress), hash };
}

export async function hasCode(clients: ChainClients, address: Address): Promise<boolean> {
  const code = await clients.publicClient.getCode({ address });
  return code !== undefined && code !== "0x";
}

export async function isRegistered(clients: ChainClients, registry: Address, contract: Address) {
  return clients.publicClient.readContract({
    address: registry,
    abi: RegistryAbi,
    functionName: "isRegistered",
    args: [contract],
  });
}

export async function setRegistration(
  clients: ChainClients,
  registry: Address,
  contract: Address,
  action: "register" | "unregister",
): Promise<Hash> {
  const hash = await clients.walletClient.writeContract({
    address: registry,
    abi: RegistryAbi,
    functionName: action === "register" ? "registerContract" : "unregisterContract",
    args: [contract],
  });
  await confirm(clients, hash, `${action}Contract(${contract})`);
  return hash;
}

/** Emits PinHash for each CID from `storage` (registerData for one, pinMany for several). */
export async function pinCids(
  clients: ChainClients,
  storage: Address,
  cids: string[],
): Promise<Hash> {
  if (cids.length === 0) throw new UsageError("give at least one CID");
  const hash =
    cids.length === 1
      ? await clients.walletClient.writeContract({
          address: storage,
          abi: StorageAbi,
          functionName: "registerData",
          args: [keccak256(stringToHex(cids[0] as string)), cids[0] as string],
        })
      : await clients.walletClient.writeContract({
          address: storage,
          abi: StorageAbi,
          functionName: "pinMany",
          args: [cids],
        });
  await confirm(clients, hash, "PinHash");
  return hash;
}
