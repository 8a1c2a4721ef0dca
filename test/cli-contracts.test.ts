/**
 * `quasar contracts` against a real anvil: a fresh key in a JSON keystore (never a flag,
 * never printed), deploy, register, pin, unregister; anvil's public keys refused off 31337.
 */
import { spawn } from "node:child_process";
import { createCipheriv, pbkdf2Sync, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Address, getAddress, type Hex, keccak256, parseEther, toEventSelector } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryAbi } from "@/abis/index.js";
import { ANVIL_ACCOUNTS, type Anvil, startAnvil } from "./harness/anvil.js";
import { uniqueChainId } from "./harness/ponder.js";

const ROOT = join(import.meta.dirname, "..");
const PASSWORD = "correct horse battery staple";

let anvil: Anvil;
let dir: string;
let keystorePath: string;
let privateKey: Hex;
let registry: Address;
let storage: Address;

/** A keystore v3 (PBKDF2, as several wallets write it) for `key`. */
function keystoreFor(key: Hex, password: string) {
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const derived = pbkdf2Sync(password, salt, 4096, 32, "sha256");
  const cipher = createCipheriv("aes-128-ctr", derived.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([
    cipher.update(Buffer.from(key.slice(2), "hex")),
    cipher.final(),
  ]);
  return {
    version: 3,
    id: "00000000-0000-4000-8000-000000000000",
    address: privateKeyToAccount(key).address.slice(2).toLowerCase(),
    crypto: {
      cipher: "aes-128-ctr",
      cipherparams: { iv: iv.toString("hex") },
      ciphertext: ciphertext.toString("hex"),
      kdf: "pbkdf2",
      kdfparams: { c: 4096, dklen: 32, prf: "hmac-sha256", salt: salt.toString("hex") },
      mac: keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2),
    },
  };
}

async function quasar(args: string[], env: Record<string, string> = {}) {
  const child = spawn(
    join(ROOT, "node_modules", ".bin", "node"),
    [join(ROOT, "bin", "quasar.js"), "contracts", ...args],
    {
      cwd: dir,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        QUASAR_CHAINS: JSON.stringify([
          {
            id: anvil.chainId,
            rpc: anvil.rpcUrl,
            registry: registry ?? "0x0000000000000000000000000000000000000001",
          },
        ]),
        ...env,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  // Whatever happened, the key never reaches the terminal.
  expect(output.toLowerCase()).not.toContain(privateKey.slice(2).toLowerCase());
  return { code, output };
}

beforeAll(async () => {
  anvil = await startAnvil({ chainId: uniqueChainId() });
  dir = await mkdtemp(join(tmpdir(), "quasar-contracts-"));
  privateKey = generatePrivateKey();
  await anvil.testClient.setBalance({
    address: privateKeyToAccount(privateKey).address,
    value: parseEther("10"),
  });
  keystorePath = join(dir, "deployer.json");
  await writeFile(keystorePath, JSON.stringify(keystoreFor(privateKey, PASSWORD)));
}, 60_000);

afterAll(async () => {
  await anvil?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("quasar contracts", () => {
  it("deploys a registry and a registered storage with a keystore key", async () => {
    const withKeystore = { QUASAR_KEYSTORE_PASSWORD: PASSWORD };
    const deployed = await quasar(["deploy", "registry", "--keystore", keystorePath], withKeystore);
    expect(deployed.code, deployed.output).toBe(0);
    registry = getAddress(/registry (0x[0-9a-fA-F]{40})/.exec(deployed.output)?.[1] as string);

    const stored = await quasar(
      ["deploy", "storage", "--register", "--keystore", keystorePath],
      withKeystore,
    );
    expect(stored.code, stored.output).toBe(0);
    storage = getAddress(/storage (0x[0-9a-fA-F]{40})/.exec(stored.output)?.[1] as string);
    const registered = await anvil.publicClient.readContract({
      address: registry,
      abi: RegistryAbi,
      functionName: "isRegistered",
      args: [storage],
    });
    expect(registered).toBe(true);
    // The keystore's account owns the registry.
    const owner = await anvil.publicClient.readContract({
      address: registry,
      abi: RegistryAbi,
      functionName: "owner",
    });
    expect(owner).toBe(privateKeyToAccount(privateKey).address);
  }, 120_000);

  it("pins CIDs (PinHash logs) and unregisters, with the key from QUASAR_DEPLOYER_KEY", async () => {
    const env = { QUASAR_DEPLOYER_KEY: privateKey };
    const cids = [
      "bafkreiefguoqizjvu7zyjvne6liyjadfdpenpn3owssadb3im7vo5eahju",
      "QmWATWQ7fVPP2EFGu71UkfnqhYXDYH566qy47CnJDgvs8u",
    ];
    const pinned = await quasar(["pin", ...cids, "--contract", storage], env);
    expect(pinned.code, pinned.output).toBe(0);
    const logs = await anvil.publicClient.getLogs({ address: storage, fromBlock: 0n });
    expect(logs.filter((log) => log.topics[0] === toEventSelector("PinHash(string)"))).toHaveLength(
      2,
    );

    const bad = await quasar(["pin", "not-a-cid", "--contract", storage], env);
    expect(bad.code).toBe(1);
    expect(bad.output).toContain('"not-a-cid" is not a CID');

    const unregistered = await quasar(["unregister", storage], env);
    expect(unregistered.code, unregistered.output).toBe(0);
    const still = await anvil.publicClient.readContract({
      address: registry,
      abi: RegistryAbi,
      functionName: "isRegistered",
      args: [storage],
    });
    expect(still).toBe(false);
  }, 120_000);

  it("refuses a wrong keystore password, a malformed key, and anvil's public key off chain 31337", async () => {
    const wrong = await quasar(["register", storage, "--keystore", keystorePath], {
      QUASAR_KEYSTORE_PASSWORD: "nope",
    });
    expect(wrong.code).toBe(1);
    expect(wrong.output).toContain("wrong keystore password");

    const malformed = await quasar(["register", storage], { QUASAR_DEPLOYER_KEY: "0x1234" });
    expect(malformed.code).toBe(1);
    expect(malformed.output).toContain("QUASAR_DEPLOYER_KEY is not a 32-byte hex private key");
    expect(malformed.output).not.toContain("0x1234");

    const devKey = await quasar(["register", storage], {
      QUASAR_DEPLOYER_KEY: ANVIL_ACCOUNTS[0].privateKey,
    });
    expect(devKey.code).toBe(1);
    expect(devKey.output).toContain(
      `refusing anvil's public default key on chain ${anvil.chainId}`,
    );

    const noKey = await quasar(["register", storage]);
    expect(noKey.code).toBe(1);
    expect(noKey.output).toContain(`no signing key for chain ${anvil.chainId}`);
  }, 120_000);
});
