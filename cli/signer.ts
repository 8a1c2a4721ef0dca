import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import type { Hex } from "viem";
import { type PrivateKeyAccount, privateKeyToAccount } from "viem/accounts";
import { SignerError } from "./errors.js";
import { decryptKeystore } from "./keystore.js";

/**
 * Where `quasar contracts` gets its signing key. Never from a flag (argv is visible to
 * every user of the machine and lands in shell history) and never printed:
 * - `--keystore <file>`: a JSON keystore v3, its password from QUASAR_KEYSTORE_PASSWORD or a
 *   hidden prompt on the terminal;
 * - else QUASAR_DEPLOYER_KEY (hex private key) from the environment;
 * - else, on the local chain 31337 only, anvil's first default account.
 * anvil's default keys are public: they are refused on any other chain unless
 * `--allow-dev-key` says the chain is a throwaway one.
 */
export const DEPLOYER_KEY_ENV = "QUASAR_DEPLOYER_KEY";
export const KEYSTORE_PASSWORD_ENV = "QUASAR_KEYSTORE_PASSWORD";
export const LOCAL_CHAIN_ID = 31337;

/** anvil's first default account (mnemonic "test test … junk"): public knowledge. */
export const ANVIL_DEFAULT_KEY: Hex =
  "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

const ANVIL_DEFAULT_KEYS = new Set([
  ANVIL_DEFAULT_KEY,
  "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
  "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
]);

export type SignerOptions = { keystore?: string; allowDevKey?: boolean };

export type ResolvedSigner = {
  account: PrivateKeyAccount;
  source: "keystore" | "env" | "anvil-default";
};

export async function resolveSigner(
  options: SignerOptions,
  env: Readonly<Record<string, string | undefined>>,
  chainId: number,
  prompt: (question: string) => Promise<string> = promptHidden,
): Promise<ResolvedSigner> {
  let key: Hex;
  let source: ResolvedSigner["source"];
  if (options.keystore !== undefined) {
    const json = await readFile(options.keystore, "utf8").catch((error: unknown) => {
      throw new SignerError(`cannot read keystore ${options.keystore}`, { cause: error });
    });
    const password =
      env[KEYSTORE_PASSWORD_ENV] ?? (await prompt(`password for ${options.keystore}: `));
    key = await decryptKeystore(json, password);
    source = "keystore";
  } else if (env[DEPLOYER_KEY_ENV]) {
    const raw = (env[DEPLOYER_KEY_ENV] as string).trim();
    const normalized = (raw.startsWith("0x") ? raw : `0x${raw}`).toLowerCase();
    if (!/^0x[0-9a-f]{64}$/.test(normalized)) {
      // Say what is wrong without echoing any of it.
      throw new SignerError(`${DEPLOYER_KEY_ENV} is not a 32-byte hex private key`);
    }
    key = normalized as Hex;
    source = "env";
  } else if (chainId === LOCAL_CHAIN_ID) {
    key = ANVIL_DEFAULT_KEY;
    source = "anvil-default";
  } else {
    throw new SignerError(`no signing key for chain ${chainId}`, {
      details: `set ${DEPLOYER_KEY_ENV} in the environment or pass --keystore <file>`,
    });
  }
  if (ANVIL_DEFAULT_KEYS.has(key) && chainId !== LOCAL_CHAIN_ID && !options.allowDevKey) {
    throw new SignerError(`refusing anvil's public default key on chain ${chainId}`, {
      details: "anyone can sign with it; pass --allow-dev-key if this chain is a throwaway one",
    });
  }
  return { account: privateKeyToAccount(key), source };
}

/** Reads a line from the terminal without echoing it. */
export async function promptHidden(question: string): Promise<string> {
  if (!process.stdin.isTTY) {
    throw new SignerError("no keystore password", {
      details: `set ${KEYSTORE_PASSWORD_ENV} or run in a terminal to be asked`,
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  process.stderr.write(question);
  // Mute the echo: readline writes each typed character through _writeToOutput.
  (rl as unknown as { _writeToOutput: (text: string) => void })._writeToOutput = () => {};
  try {
    return await new Promise<string>((resolve) => rl.question("", resolve));
  } finally {
    rl.close();
    process.stderr.write("\n");
  }
}
