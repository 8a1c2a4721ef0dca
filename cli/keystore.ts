import { createDecipheriv, pbkdf2Sync, scryptSync, timingSafeEqual } from "node:crypto";
import { type Hex, keccak256 } from "viem";
import { KeystoreError } from "./errors.js";

/**
 * Decrypts an Ethereum JSON keystore (Web3 Secret Storage, version 3) with node:crypto
 * alone: scrypt or PBKDF2-HMAC-SHA256 derives a 32-byte key, keccak256(key[16..32] ‖
 * ciphertext) must equal the MAC (a wrong password fails here), and AES-128-CTR with
 * key[0..16] yields the private key. The key only ever lives in memory.
 */
type KeystoreV3 = {
  version: 3;
  address?: string;
  crypto: {
    cipher: string;
    cipherparams: { iv: string };
    ciphertext: string;
    kdf: string;
    kdfparams: Record<string, unknown>;
    mac: string;
  };
};

const HEX = /^(0x)?[0-9a-fA-F]*$/;

function bytes(value: unknown, field: string): Buffer {
  if (typeof value !== "string" || !HEX.test(value) || value.replace(/^0x/, "").length % 2 !== 0) {
    throw new KeystoreError(`keystore field ${field} is not hex`);
  }
  return Buffer.from(value.replace(/^0x/, ""), "hex");
}

function positiveInteger(value: unknown, field: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
    throw new KeystoreError(`keystore field ${field} is not a positive integer`);
  }
  return value;
}

function parseKeystore(json: string): KeystoreV3 {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new KeystoreError("the keystore file is not JSON", { cause: error });
  }
  const record = parsed as Partial<KeystoreV3> & { Crypto?: KeystoreV3["crypto"] };
  // Some old clients wrote "Crypto" with a capital C.
  const crypto = record.crypto ?? record.Crypto;
  if (record.version !== 3 || typeof crypto !== "object" || crypto === null) {
    throw new KeystoreError("unsupported keystore: expected a version 3 JSON keystore");
  }
  return { ...record, version: 3, crypto } as KeystoreV3;
}

function deriveKey(keystore: KeystoreV3, password: string): Buffer {
  const { kdf, kdfparams } = keystore.crypto;
  const salt = bytes(kdfparams.salt, "kdfparams.salt");
  const dklen = positiveInteger(kdfparams.dklen, "kdfparams.dklen");
  if (dklen < 32) throw new KeystoreError("keystore kdfparams.dklen must be at least 32");
  if (kdf === "scrypt") {
    const N = positiveInteger(kdfparams.n, "kdfparams.n");
    const r = positiveInteger(kdfparams.r, "kdfparams.r");
    const p = positiveInteger(kdfparams.p, "kdfparams.p");
    // OpenSSL needs about 128·N·r bytes plus 128·r·p; allow a margin, capped at 2 GiB.
    const maxmem = Math.min(2 ** 31, 2 * 128 * N * r + 2 * 128 * r * p + 32 * 1024 * 1024);
    try {
      return scryptSync(password, salt, dklen, { N, r, p, maxmem });
    } catch (error) {
      // OpenSSL refuses N ≥ 2^(16·r) (e.g. r=1 with N=2^18); geth and viem write r=8.
      throw new KeystoreError(`scrypt parameters n=${N} r=${r} p=${p} are not supported here`, {
        cause: error,
        details: "re-encrypt the key with standard parameters (r=8), e.g. with geth or cast wallet",
      });
    }
  }
  if (kdf === "pbkdf2") {
    if (kdfparams.prf !== "hmac-sha256") {
      throw new KeystoreError(`unsupported keystore PBKDF2 prf "${String(kdfparams.prf)}"`);
    }
    const c = positiveInteger(kdfparams.c, "kdfparams.c");
    return pbkdf2Sync(password, salt, c, dklen, "sha256");
  }
  throw new KeystoreError(`unsupported keystore kdf "${kdf}" (expected scrypt or pbkdf2)`);
}

/** Returns the private key; throws KeystoreError on a wrong password or a malformed file. */
export function decryptKeystore(json: string, password: string): Hex {
  const keystore = parseKeystore(json);
  const { cipher, cipherparams, ciphertext: ciphertextHex, mac: macHex } = keystore.crypto;
  if (cipher !== "aes-128-ctr") {
    throw new KeystoreError(`unsupported keystore cipher "${cipher}" (expected aes-128-ctr)`);
  }
  const ciphertext = bytes(ciphertextHex, "ciphertext");
  const iv = bytes(cipherparams?.iv, "cipherparams.iv");
  const expectedMac = bytes(macHex, "mac");
  const derived = deriveKey(keystore, password);
  const mac = Buffer.from(
    keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext]), "bytes"),
  );
  if (mac.length !== expectedMac.length || !timingSafeEqual(mac, expectedMac)) {
    throw new KeystoreError("wrong keystore password (the MAC does not match)");
  }
  const decipher = createDecipheriv("aes-128-ctr", derived.subarray(0, 16), iv);
  const key = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  if (key.length !== 32) throw new KeystoreError("the keystore does not hold a 32-byte key");
  return `0x${key.toString("hex")}` as Hex;
}
