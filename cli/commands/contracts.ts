import type { Command } from "commander";
import { type Address, getAddress, isAddress } from "viem";
import { checkCid } from "@/src/cid.js";
import {
  type ChainClients,
  connectChain,
  deployRegistry,
  deployStorage,
  pinCids,
  setRegistration,
} from "../chain-ops.js";
import { pickChain } from "../common.js";
import { commandEnvironment, DEV_STORAGE_KEY } from "../dev-env.js";
import { UsageError } from "../errors.js";
import { addSettingOptions, applySettingFlags, resolveConfig } from "../settings.js";
import { resolveSigner } from "../signer.js";

type ChainOptions = {
  chain?: string;
  rpc?: string;
  registry?: string;
  keystore?: string;
  allowDevKey?: boolean;
};

function addChainOptions(command: Command): Command {
  addSettingOptions(command, { hidden: true });
  return command
    .option("--chain <id>", "configured chain to use (required when several are configured)")
    .option("--rpc <url>", "RPC to send to (default: the chain's configured rpc)")
    .option("--registry <address>", "registry contract (default: the chain's configured registry)")
    .option(
      "--keystore <file>",
      "sign with this JSON keystore v3 (password from QUASAR_KEYSTORE_PASSWORD or a prompt); default: QUASAR_DEPLOYER_KEY",
    )
    .option("--allow-dev-key", "allow anvil's public default key on a chain other than 31337");
}

function parseAddress(value: string, what: string): Address {
  if (!isAddress(value, { strict: false })) {
    throw new UsageError(`${what} "${value}" is not an address (0x followed by 40 hex digits)`);
  }
  return getAddress(value);
}

async function connect(options: ChainOptions, env: Readonly<Record<string, string | undefined>>) {
  const { config } = resolveConfig(env);
  const chain = pickChain(config, options.chain);
  const signer = await resolveSigner(options, env, chain.id);
  if (signer.source === "anvil-default") {
    process.stderr.write("signing with anvil's default account 0 (local chain 31337)\n");
  }
  const clients: ChainClients = await connectChain(
    options.rpc ?? chain.rpc,
    signer.account,
    chain.id,
  );
  const registry = parseAddress(options.registry ?? chain.registry, "--registry");
  return { clients, registry, chain, account: signer.account.address };
}

export function registerContractsCommands(program: Command, _signal: AbortSignal): void {
  const contracts = program
    .command("contracts")
    .description(
      "Operator helpers: deploy, register, unregister, pin (key from QUASAR_DEPLOYER_KEY or --keystore, never a flag)",
    );

  addChainOptions(
    contracts
      .command("deploy <what>")
      .description("Deploy a Registry or a Storage contract (what: registry | storage)")
      .option("--register", "storage: also register it in the registry"),
  ).action(async (what: string, options: ChainOptions & { register?: boolean }) => {
    if (what !== "registry" && what !== "storage") {
      throw new UsageError(`deploy expects "registry" or "storage", got "${what}"`);
    }
    const env = applySettingFlags(options, commandEnvironment(process.env, process.cwd()));
    const { clients, registry } = await connect(options, env);
    if (what === "registry") {
      const deployed = await deployRegistry(clients);
      process.stdout.write(`registry ${deployed.address} (transaction ${deployed.hash})\n`);
      process.stdout.write(
        `set "registry": "${deployed.address.toLowerCase()}" for chain ${clients.chain.id} in QUASAR_CHAINS\n`,
      );
      return;
    }
    const deployed = await deployStorage(clients);
    process.stdout.write(`storage ${deployed.address} (transaction ${deployed.hash})\n`);
    if (options.register) {
      const hash = await setRegistration(clients, registry, deployed.address, "register");
      process.stdout.write(`registered in ${registry} (transaction ${hash})\n`);
    }
  });

  for (const action of ["register", "unregister"] as const) {
    addChainOptions(
      contracts
        .command(`${action} <address>`)
        .description(
          `${action === "register" ? "Register" : "Unregister"} a storage contract in the registry (owner only)`,
        ),
    ).action(async (address: string, options: ChainOptions) => {
      const contract = parseAddress(address, "address");
      const env = applySettingFlags(options, commandEnvironment(process.env, process.cwd()));
      const { clients, registry } = await connect(options, env);
      const hash = await setRegistration(clients, registry, contract, action);
      process.stdout.write(`${action}ed ${contract} in ${registry} (transaction ${hash})\n`);
    });
  }

  addChainOptions(
    contracts
      .command("pin <cid...>")
      .description("Emit PinHash for each CID from a storage contract (one transaction)")
      .option(
        "--contract <address>",
        `storage contract (default: ${DEV_STORAGE_KEY} from .quasar/dev.env)`,
      ),
  ).action(async (cids: string[], options: ChainOptions & { contract?: string }) => {
    for (const cid of cids) {
      const check = checkCid(cid);
      if (!check.valid)
        throw new UsageError(`"${cid}" is not a CID: ${check.reason} (${check.detail})`);
    }
    const env = applySettingFlags(options, commandEnvironment(process.env, process.cwd()));
    const contractText = options.contract ?? env[DEV_STORAGE_KEY];
    if (contractText === undefined) {
      throw new UsageError(
        "--contract is required (no .quasar/dev.env with a storage contract here)",
      );
    }
    const storage = parseAddress(contractText, "--contract");
    const { clients } = await connect(options, env);
    const hash = await pinCids(clients, storage, cids);
    const receipt = await clients.publicClient.getTransactionReceipt({ hash });
    process.stdout.write(
      `PinHash × ${cids.length} from ${storage} in block ${receipt.blockNumber} (transaction ${hash})\n`,
    );
  });
}
