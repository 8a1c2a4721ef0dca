import { Wallet } from "@ethereumjs/wallet";
import type { Hex } from "viem";
import { KeystoreError } from "./errors.js";

/**
 * Decrypts an Ethereum JSON keystore (Web3 Secret Storage, version 3). The cryptography
 * (scrypt or PBKDF2-HMAC-SHA256, the keccak256 MAC, AES-128-CTR) is @ethereumjs/wallet's
 * `Wallet.fromV3`; this file only checks the file's shape first, so that every refusal is a
 * KeystoreError whose `reason` tells a wrong password from a malformed or unsupported file.
 * The key only ever lives in memory.
 */
/** The library's V3Keystore type, which it does not export. */
type KeystoreV3 = Exclude<Parameters<typeof Wallet.fromV3>[0], string>;

const HEX = /^(0x)?([0-9a-fA-F]{2})*$/;

/** Hex without 0x, lower case: the library compares the MAC as an unprefixed lower-case string. */
function hex(value: unknown, field: string): string {
  if (typeof value !== "string" || !HEX.test(value) || value.replace(/^0x/, "").length === 0) {
    throw new KeystoreError("malformed", `keystore field ${field} is not hex`);
  }
  return value.replace(/^0x/, "").toLowerCase();
}

function positiveInteger(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new KeystoreError("malformed", `keystore field ${field} is not a positive integer`);
  }
  return value;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseKeystore(json: string): KeystoreV3 {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new KeystoreError("malformed", "the keystore file is not JSON", { cause: error });
  }
  if (!isRecord(parsed)) throw new KeystoreError("malformed", "the keystore file is not an object");
  // Some old clients wrote "Crypto" with a capital C.
  const crypto = parsed.crypto ?? parsed.Crypto;
  if (parsed.version !== 3 || !isRecord(crypto)) {
    throw new KeystoreError(
      "unsupported",
      "unsupported keystore: expected a version 3 JSON keystore",
    );
  }
  const { cipher, cipherparams, kdf, kdfparams } = crypto;
  if (cipher !== "aes-128-ctr") {
    throw new KeystoreError(
      "unsupported",
      `unsupported keystore cipher "${String(cipher)}" (expected aes-128-ctr)`,
    );
  }
  if (!isRecord(kdfparams)) throw new KeystoreError("malformed", "keystore kdfparams is missing");
  const dklen = positiveInteger(kdfparams.dklen, "kdfparams.dklen");
  if (dklen < 32) {
    throw new KeystoreError("malformed", "keystore kdfparams.dklen must be at least 32");
  }
  const salt = hex(kdfparams.salt, "kdfparams.salt");
  let params: KeystoreV3["crypto"]["kdfparams"];
  if (kdf === "scrypt") {
    params = {
      dklen,
      salt,
      n: positiveInteger(kdfparams.n, "kdfparams.n"),
      r: positiveInteger(kdfparams.r, "kdfparams.r"),
      p: positiveInteger(kdfparams.p, "kdfparams.p"),
    };
  } else if (kdf === "pbkdf2") {
    if (kdfparams.prf !== "hmac-sha256") {
      throw new KeystoreError(
        "unsupported",
        `unsupported keystore PBKDF2 prf "${String(kdfparams.prf)}"`,
      );
    }
    params = { dklen, salt, prf: "hmac-sha256", c: positiveInteger(kdfparams.c, "kdfparams.c") };
  } else {
    throw new KeystoreError(
      "unsupported",
      `unsupported keystore kdf "${String(kdf)}" (expected scrypt or pbkdf2)`,
    );
  }
  return {
    version: 3,
    // Only the library's type needs it; fromV3 does not read it.
    id: typeof parsed.id === "string" ? parsed.id : "",
    crypto: {
      cipher,
      cipherparams: {
        iv: hex(isRecord(cipherparams) ? cipherparams.iv : undefined, "cipherparams.iv"),
      },
      ciphertext: hex(crypto.ciphertext, "ciphertext"),
      kdf,
      kdfparams: params,
      mac: hex(crypto.mac, "mac"),
    },
  };
}

/**
 * Returns the private key; throws KeystoreError on a wrong password, a malformed file or an
 * unsupported one. Async because the library's scrypt yields to the event loop while it runs.
 */
export async function decryptKeystore(json: string, password: string): Promise<Hex> {
  const keystore = parseKeystore(json);
  let wallet: Wallet;
  try {
    wallet = await Wallet.fromV3(keystore, password);
  } catch (error) {
    throw libraryFailure(keystore, error);
  }
  return wallet.getPrivateKeyString() as Hex;
}

/**
 * The library throws plain Errors; their messages are the only way to tell them apart, and
 * keystore.test.ts pins each case so that a library upgrade that rewords one fails there.
 */
function libraryFailure(keystore: KeystoreV3, error: unknown): KeystoreError {
  const message = error instanceof Error ? error.message : String(error);
  if (/wrong passphrase/i.test(message)) {
    return new KeystoreError("wrong-password", "wrong keystore password (the MAC does not match)");
  }
  if (/^Scrypt:/.test(message)) {
    const params = keystore.crypto.kdfparams;
    const named = "n" in params ? `n=${params.n} r=${params.r} p=${params.p}` : "";
    // noble's scrypt caps memory at 1 GiB (128·r·N bytes) and needs N a power of two.
    return new KeystoreError("unsupported", `scrypt parameters ${named} are not supported`, {
      cause: error,
      details:
        "re-encrypt the key with standard parameters (n=262144, r=8, p=1), e.g. with geth or cast wallet",
    });
  }
  if (/curve requirements/.test(message)) {
    return new KeystoreError("malformed", "the keystore does not hold a valid private key", {
      cause: error,
    });
  }
  return new KeystoreError("malformed", "the keystore could not be decrypted", {
    cause: error,
    details: message,
  });
}
