import { createCipheriv, pbkdf2Sync, randomBytes, scryptSync } from "node:crypto";
import { keccak256 } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { describe, expect, it } from "vitest";
import { KeystoreError, type KeystoreFailure } from "./errors.js";
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

type Kdf = { kdf: "scrypt"; n: number; r: number; p: number } | { kdf: "pbkdf2"; c: number };

/**
 * Writes a keystore with node:crypto (OpenSSL), an implementation independent of the
 * library's pure-JS one, so that each checks the other.
 */
function makeKeystore(key: string, password: string, params: Kdf) {
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const derived =
    params.kdf === "scrypt"
      ? scryptSync(password, salt, 32, { N: params.n, r: params.r, p: params.p })
      : pbkdf2Sync(password, salt, params.c, 32, "sha256");
  const cipher = createCipheriv("aes-128-ctr", derived.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([
    cipher.update(Buffer.from(key.slice(2), "hex")),
    cipher.final(),
  ]);
  const { kdf, ...rest } = params;
  return {
    version: 3,
    id: "00000000-0000-4000-8000-000000000000",
    address: privateKeyToAccount(key as `0x${string}`)
      .address.slice(2)
      .toLowerCase(),
    crypto: {
      cipher: "aes-128-ctr",
      cipherparams: { iv: iv.toString("hex") },
      ciphertext: ciphertext.toString("hex"),
      kdf,
      kdfparams: {
        dklen: 32,
        salt: salt.toString("hex"),
        ...(kdf === "pbkdf2" ? { prf: "hmac-sha256" } : {}),
        ...rest,
      },
      mac: keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2),
    },
  };
}

/** The KeystoreError a call fails with, to assert its reason and message together. */
async function failure(json: string, password: string): Promise<KeystoreError> {
  const error = await decryptKeystore(json, password).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KeystoreError);
  return error as KeystoreError;
}

async function expectFailure(
  json: string,
  password: string,
  reason: KeystoreFailure,
  message: RegExp,
): Promise<void> {
  const error = await failure(json, password);
  expect(error.reason).toBe(reason);
  expect(error.shortMessage).toMatch(message);
}

describe("decryptKeystore", () => {
  it("decrypts the spec's PBKDF2 vector", async () => {
    expect(await decryptKeystore(JSON.stringify(PBKDF2), "testpassword")).toBe(EXPECTED_KEY);
  });

  it("decrypts the spec's scrypt vector (r=1, n=2^18, which OpenSSL refuses)", async () => {
    expect(await decryptKeystore(JSON.stringify(SCRYPT), "testpassword")).toBe(EXPECTED_KEY);
  });

  it.each([
    ["scrypt with geth's light parameters", { kdf: "scrypt", n: 4096, r: 8, p: 6 }],
    ["pbkdf2", { kdf: "pbkdf2", c: 4096 }],
  ] as const)("decrypts a fresh %s keystore and refuses a wrong password", async (_, params) => {
    const key = `0x${randomBytes(32).toString("hex")}`;
    const keystore = JSON.stringify(makeKeystore(key, "correct horse", params));
    expect(await decryptKeystore(keystore, "correct horse")).toBe(key);
    await expectFailure(keystore, "wrong horse", "wrong-password", /wrong keystore password/);
  });

  it("accepts 0x-prefixed upper-case hex and the old capital-C Crypto field", async () => {
    const keystore = makeKeystore(EXPECTED_KEY, "pw", { kdf: "pbkdf2", c: 1000 });
    const { crypto, ...rest } = keystore;
    const shouted = {
      ...rest,
      Crypto: {
        ...crypto,
        ciphertext: `0x${crypto.ciphertext.toUpperCase()}`,
        mac: crypto.mac.toUpperCase(),
      },
    };
    expect(await decryptKeystore(JSON.stringify(shouted), "pw")).toBe(EXPECTED_KEY);
  });

  it("refuses a tampered MAC or ciphertext as a wrong password, returning nothing", async () => {
    const keystore = makeKeystore(EXPECTED_KEY, "pw", { kdf: "pbkdf2", c: 1000 });
    const flip = (hex: string) => `${hex[0] === "0" ? "1" : "0"}${hex.slice(1)}`;
    const badMac = { ...keystore, crypto: { ...keystore.crypto, mac: flip(keystore.crypto.mac) } };
    await expectFailure(JSON.stringify(badMac), "pw", "wrong-password", /MAC does not match/);
    const badCipher = {
      ...keystore,
      crypto: { ...keystore.crypto, ciphertext: flip(keystore.crypto.ciphertext) },
    };
    await expectFailure(JSON.stringify(badCipher), "pw", "wrong-password", /MAC does not match/);
  });

  it("names what is wrong with a malformed file", async () => {
    await expectFailure("not json", "x", "malformed", /not JSON/);
    await expectFailure("[1, 2]", "x", "malformed", /not an object/);
    const noHex = { ...PBKDF2, crypto: { ...PBKDF2.crypto, mac: "zz" } };
    await expectFailure(JSON.stringify(noHex), "x", "malformed", /field mac is not hex/);
    const oddIv = { ...PBKDF2, crypto: { ...PBKDF2.crypto, cipherparams: { iv: "abc" } } };
    await expectFailure(JSON.stringify(oddIv), "x", "malformed", /cipherparams.iv is not hex/);
    const noCount = {
      ...PBKDF2,
      crypto: { ...PBKDF2.crypto, kdfparams: { ...PBKDF2.crypto.kdfparams, c: -1 } },
    };
    await expectFailure(JSON.stringify(noCount), "x", "malformed", /kdfparams.c is not a positive/);
    // A ciphertext that decrypts to 16 bytes is no private key, even with a matching MAC.
    const key = `0x${"11".repeat(32)}`;
    const short = makeKeystore(key, "pw", { kdf: "pbkdf2", c: 1000 });
    const derived = pbkdf2Sync(
      "pw",
      Buffer.from(short.crypto.kdfparams.salt, "hex"),
      1000,
      32,
      "sha256",
    );
    const ciphertext = short.crypto.ciphertext.slice(0, 32);
    const truncated = {
      ...short,
      crypto: {
        ...short.crypto,
        ciphertext,
        mac: keccak256(
          Buffer.concat([derived.subarray(16, 32), Buffer.from(ciphertext, "hex")]),
        ).slice(2),
      },
    };
    await expectFailure(JSON.stringify(truncated), "pw", "malformed", /valid private key/);
  });

  it("names what it cannot read: version, cipher, KDF, PRF, scrypt beyond the memory cap", async () => {
    await expectFailure(JSON.stringify({ version: 1 }), "x", "unsupported", /version 3/);
    const otherCipher = { ...PBKDF2, crypto: { ...PBKDF2.crypto, cipher: "aes-256-cbc" } };
    await expectFailure(JSON.stringify(otherCipher), "x", "unsupported", /aes-128-ctr/);
    const otherKdf = { ...PBKDF2, crypto: { ...PBKDF2.crypto, kdf: "argon2" } };
    await expectFailure(JSON.stringify(otherKdf), "x", "unsupported", /kdf "argon2"/);
    const otherPrf = {
      ...PBKDF2,
      crypto: { ...PBKDF2.crypto, kdfparams: { ...PBKDF2.crypto.kdfparams, prf: "hmac-sha1" } },
    };
    await expectFailure(JSON.stringify(otherPrf), "x", "unsupported", /prf "hmac-sha1"/);
    // 128·r·N = 2 GiB: refused before any memory is allocated.
    const huge = {
      ...SCRYPT,
      crypto: { ...SCRYPT.crypto, kdfparams: { ...SCRYPT.crypto.kdfparams, n: 2 ** 21, r: 8 } },
    };
    const error = await failure(JSON.stringify(huge), "x");
    expect(error.reason).toBe("unsupported");
    expect(error.shortMessage).toMatch(/n=2097152 r=8 p=8 are not supported/);
    expect(error.details).toMatch(/re-encrypt/);
    const notPowerOfTwo = {
      ...SCRYPT,
      crypto: { ...SCRYPT.crypto, kdfparams: { ...SCRYPT.crypto.kdfparams, n: 1000 } },
    };
    await expectFailure(JSON.stringify(notPowerOfTwo), "x", "unsupported", /n=1000/);
  });
});
