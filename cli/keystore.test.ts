import { createCipheriv, randomBytes } from "node:crypto";
// An independent scrypt (viem's own dependency) builds the scrypt keystore the CLI decrypts
// with node:crypto, so the two implementations check each other.
import { scrypt } from "@noble/hashes/scrypt.js";
import { keccak256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { KeystoreError } from "./errors.js";
import { decryptKeystore } from "./keystore.js";

// The test vectors of the Web3 Secret Storage Definition (version 3): password
// "testpassword", both decrypting to the same private key.
const EXPECTED_KEY = "0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d";

const PBKDF2 = {
  crypto: {
    cipher: "aes-128-ctr",
    cipherparams: { iv: "6087dab2f9fdbbfaddc31a909735c1e6" },
    ciphertext: "5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46",
    kdf: "pbkdf2",
    kdfparams: {
      c: 262144,
      dklen: 32,
      prf: "hmac-sha256",
      salt: "ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd",
    },
    mac: "517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2",
  },
  id: "3198bc9c-6672-5ab3-d995-4942343ae5b6",
  version: 3,
};

const SCRYPT = {
  crypto: {
    cipher: "aes-128-ctr",
    cipherparams: { iv: "83dbcc02d8ccb40e466191a123791e0e" },
    ciphertext: "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
    kdf: "scrypt",
    kdfparams: {
      dklen: 32,
      n: 262144,
      p: 8,
      r: 1,
      salt: "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19",
    },
    mac: "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097",
  },
  id: "3198bc9c-6672-5ab3-d995-4942343ae5b6",
  version: 3,
};

describe("decryptKeystore", () => {
  it("decrypts the spec's PBKDF2 vector", () => {
    expect(decryptKeystore(JSON.stringify(PBKDF2), "testpassword")).toBe(EXPECTED_KEY);
  });

  it("decrypts a scrypt keystore with geth's light parameters (n=4096, r=8, p=6)", () => {
    const salt = randomBytes(32);
    const iv = randomBytes(16);
    const derived = Buffer.from(scrypt("correct horse", salt, { N: 4096, r: 8, p: 6, dkLen: 32 }));
    const cipher = createCipheriv("aes-128-ctr", derived.subarray(0, 16), iv);
    const secret = Buffer.from(EXPECTED_KEY.slice(2), "hex");
    const ciphertext = Buffer.concat([cipher.update(secret), cipher.final()]);
    const mac = keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2);
    const keystore = {
      version: 3,
      crypto: {
        cipher: "aes-128-ctr",
        cipherparams: { iv: iv.toString("hex") },
        ciphertext: ciphertext.toString("hex"),
        kdf: "scrypt",
        kdfparams: { dklen: 32, n: 4096, r: 8, p: 6, salt: salt.toString("hex") },
        mac,
      },
    };
    const key = decryptKeystore(JSON.stringify(keystore), "correct horse");
    expect(key).toBe(EXPECTED_KEY);
    expect(privateKeyToAccount(key).address).toMatch(/^0x[0-9a-fA-F]{40}$/);
    expect(() => decryptKeystore(JSON.stringify(keystore), "wrong horse")).toThrow(KeystoreError);
  });

  it("explains scrypt parameters OpenSSL cannot run (the spec's r=1, n=2^18 vector)", () => {
    expect(() => decryptKeystore(JSON.stringify(SCRYPT), "testpassword")).toThrow(
      /n=262144 r=1 p=8 are not supported/,
    );
  });

  it("refuses a wrong password without returning anything", () => {
    expect(() => decryptKeystore(JSON.stringify(PBKDF2), "wrong")).toThrow(KeystoreError);
    expect(() => decryptKeystore(JSON.stringify(PBKDF2), "wrong")).toThrow(
      /wrong keystore password/,
    );
  });

  it("names what is wrong with a malformed or unsupported file", () => {
    expect(() => decryptKeystore("not json", "x")).toThrow(/not JSON/);
    expect(() => decryptKeystore(JSON.stringify({ version: 1 }), "x")).toThrow(/version 3/);
    const otherCipher = { ...PBKDF2, crypto: { ...PBKDF2.crypto, cipher: "aes-256-cbc" } };
    expect(() => decryptKeystore(JSON.stringify(otherCipher), "x")).toThrow(/aes-128-ctr/);
    const otherKdf = { ...PBKDF2, crypto: { ...PBKDF2.crypto, kdf: "argon2" } };
    expect(() => decryptKeystore(JSON.stringify(otherKdf), "x")).toThrow(/kdf "argon2"/);
  });
});
