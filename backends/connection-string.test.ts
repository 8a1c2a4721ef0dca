import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { splitConnectionString } from "./connection-string.js";
import { DuplicateBackendError, InvalidConnectionStringError } from "./errors.js";
import {
  ACCEPTED_BACKEND_FORMS,
  createBackend,
  maskConnectionString,
  parseBackends,
} from "./index.js";
import { parseKuboConnectionString } from "./kubo/index.js";

const kubo = (raw: string) => parseKuboConnectionString(raw, splitConnectionString(raw, []), []);

describe("ipfs connection strings", () => {
  it.each([
    ["ipfs://127.0.0.1:5001", "http://127.0.0.1:5001/"],
    ["ipfs://localhost:5001", "http://localhost:5001/"],
    ["ipfs://node.example", "http://node.example:5001/"],
    ["ipfs+http://10.0.0.2:9095", "http://10.0.0.2:9095/"],
    ["ipfs+https://ipfs.example.com:443", "https://ipfs.example.com/"],
    ["ipfs://127.0.0.1:80", "http://127.0.0.1/"],
    ["ipfs+https://ipfs.example.com", "https://ipfs.example.com:5001/"],
    ["ipfs+https://ipfs.example.com/some/prefix/", "https://ipfs.example.com:5001/some/prefix"],
    ["ipfs://[::1]:5001", "http://[::1]:5001/"],
    ["IPFS+HTTP://Node.Example:5001", "http://node.example:5001/"],
  ])("%s → %s", (raw, baseUrl) => {
    const params = kubo(raw);
    expect(params.baseUrl.toString()).toBe(baseUrl);
    expect(params.authorization).toBeUndefined();
    // never the broken "ipfs:://" of Ceramic's implementation
    expect(params.baseUrl.toString()).not.toContain("ipfs:");
    const backend = createBackend(raw);
    expect(backend.designator).toBe("ipfs");
    expect(backend.id).toMatch(/^ipfs-[0-9a-f]{12}$/);
    expect(backend.label).toBe(raw);
  });

  it("gives every spelling of one endpoint the same id, and different endpoints different ids", () => {
    const ids = [
      "ipfs://127.0.0.1:5001",
      "ipfs+http://127.0.0.1:5001",
      "ipfs+http://127.0.0.1:5001/",
      "ipfs://127.0.0.1",
    ].map((raw) => createBackend(raw).id);
    expect(new Set(ids).size).toBe(1);
    expect(createBackend("ipfs+https://127.0.0.1:5001").id).not.toBe(ids[0]);
    expect(createBackend("ipfs://127.0.0.1:5002").id).not.toBe(ids[0]);
    expect(createBackend("ipfs://127.0.0.1:5001/prefix").id).not.toBe(ids[0]);
  });

  it("sends ?token= as a bearer token, masks it in the label and keeps it out of the id", () => {
    const raw = "ipfs+https://ipfs.example.com:5001?token=s3cr3t-value";
    const params = kubo(raw);
    expect(params.authorization).toBe("Bearer s3cr3t-value");
    expect(params.baseUrl.toString()).not.toContain("s3cr3t");
    const backend = createBackend(raw);
    expect(backend.label).toBe("ipfs+https://ipfs.example.com:5001?token=***");
    expect(backend.id).not.toContain("s3cr3t");
    // a rotated token keeps the id; no token at all is the same endpoint too
    expect(createBackend("ipfs+https://ipfs.example.com:5001?token=rotated").id).toBe(backend.id);
    expect(createBackend("ipfs+https://ipfs.example.com:5001").id).toBe(backend.id);
    expect(JSON.stringify(backend)).not.toContain("s3cr3t");
  });

  it("reads ?exclusive= as the operator's declaration, without changing the id", () => {
    const shared = createBackend("ipfs://127.0.0.1:5001");
    expect(shared.pins.exclusive).toBe(false);
    for (const raw of [
      "ipfs://127.0.0.1:5001?exclusive=true",
      "ipfs://127.0.0.1:5001?exclusive",
      "ipfs://127.0.0.1:5001?exclusive=1&token=t",
    ]) {
      const backend = createBackend(raw);
      expect(backend.pins.exclusive).toBe(true);
      // Turning it on or off keeps the backend's ledger.
      expect(backend.id).toBe(shared.id);
    }
    expect(createBackend("ipfs://127.0.0.1:5001?exclusive=false").pins.exclusive).toBe(false);
  });

  it("sends user info as basic auth and masks it", () => {
    const raw = "ipfs+https://alice:pa55word@ipfs.example.com/api-prefix";
    const params = kubo(raw);
    expect(params.authorization).toBe(`Basic ${Buffer.from("alice:pa55word").toString("base64")}`);
    expect(params.baseUrl.toString()).toBe("https://ipfs.example.com:5001/api-prefix");
    const backend = createBackend(raw);
    expect(backend.label).toBe("ipfs+https://***@ipfs.example.com/api-prefix");
    expect(createBackend("ipfs+https://bob:other@ipfs.example.com/api-prefix").id).toBe(backend.id);
  });
});

describe("helia connection strings", () => {
  it.each([
    ["helia://.quasar/ipfs", resolve(".quasar/ipfs"), false],
    ["helia:///var/lib/quasar", "/var/lib/quasar", false],
    ["helia:///tmp/x?offline=true", "/tmp/x", true],
    ["helia://data?offline=1", resolve("data"), true],
    ["helia://data?offline=false", resolve("data"), false],
  ])("%s → %s (offline %s)", (raw, _directory, _offline) => {
    const backend = createBackend(raw);
    expect(backend.designator).toBe("helia");
    expect(backend.id).toMatch(/^helia-[0-9a-f]{12}$/);
    expect(backend.label).toBe(raw);
  });

  it("is the default when no backend is configured", () => {
    const [backend] = parseBackends([]);
    expect(backend?.designator).toBe("helia");
    expect(backend?.id).toBe(createBackend(`helia://${resolve(".quasar/ipfs")}`).id);
  });

  it("names a relative and an absolute spelling of one directory with one id", () => {
    expect(createBackend("helia://.quasar/ipfs").id).toBe(
      createBackend(`helia://${resolve(".quasar/ipfs")}`).id,
    );
    expect(createBackend("helia://a?offline=true").id).not.toBe(createBackend("helia://a").id);
  });
});

describe("connection string errors", () => {
  const invalid = (raw: string) => {
    try {
      createBackend(raw);
    } catch (error) {
      expect(error).toBeInstanceOf(InvalidConnectionStringError);
      return error as InvalidConnectionStringError;
    }
    throw new Error(`${raw} was accepted`);
  };

  it.each([
    ["psa://api.pinata.cloud/psa?token=abc", "psa needs +https"],
    ["psa+ftp://api.pinata.cloud/psa", 'unknown transport "+ftp"'],
    ["psa+https://api.pinata.cloud/psa?tokn=abc", 'unknown parameter "tokn"'],
    ["psa+https://api.pinata.cloud/psa?owner=no%20spaces", "owner takes"],
    ["cluster+ftp://127.0.0.1:9094", 'unknown transport "+ftp"'],
    ["cluster+http://127.0.0.1:9094?replication-min=two", "replication-min must be a whole number"],
    ["cluster+http://127.0.0.1:9094?replication-min=-2", "replication-min must be a whole number"],
    [
      "cluster+http://127.0.0.1:9094?replication-min=3&replication-max=2",
      "must not exceed replication-max",
    ],
    [
      "cluster+http://127.0.0.1:9094?origins=/ip4/1.2.3.4/tcp/4001",
      "must be a multiaddr ending in /p2p/",
    ],
    ["cluster+http://127.0.0.1:9094?replicas=2", 'unknown parameter "replicas"'],
    ["powergate+http://host:6002", 'unknown backend kind "powergate"'],
    ["http://127.0.0.1:5001", 'unknown backend kind "http"'],
    ["127.0.0.1:5001", "expected"],
    ["", "expected"],
    ["ipfs:127.0.0.1:5001", "expected"],
    ["ipfs+ftp://host:21", 'unknown transport "+ftp"'],
    ["ipfs+ws://host:5001", 'unknown transport "+ws"'],
    ["ipfs://", "not a valid URL"],
    ["ipfs://host:99999", "not a valid URL"],
    ["ipfs://host:5001#frag", "fragment"],
    ["ipfs://host:5001?tokn=abc", 'unknown parameter "tokn"'],
    ["ipfs://host:5001?token=", "token is empty"],
    ["ipfs://host:5001?exclusive=yes", "exclusive must be true or false"],
    ["helia://", "no directory"],
    ["helia://dir?offline=maybe", "offline must be true or false"],
    ["helia://dir?listen=true", 'unknown parameter "listen"'],
    ["helia+http://dir", 'no "+transport"'],
  ])("%s is refused: %s", (raw, reason) => {
    const error = invalid(raw);
    expect(error.message).toContain(reason);
    // names the string and lists every accepted form
    expect(error.message).toContain(`"${maskConnectionString(raw)}"`);
    for (const form of ACCEPTED_BACKEND_FORMS) expect(error.message).toContain(form);
  });

  it("masks secrets in the errors about a string", () => {
    for (const raw of [
      "psa+https://api.pinata.cloud/psa?token=TOPSECRET&bad=1",
      "psa://api.pinata.cloud/psa?token=TOPSECRET",
      "ipfs+https://user:TOPSECRET@host:5001?tokn=x",
      "ipfs+https://host:5001?token=TOPSECRET&bad=1",
      "nope://host?api_key=TOPSECRET",
    ]) {
      const error = invalid(raw);
      expect(error.message).not.toContain("TOPSECRET");
      expect(JSON.stringify(error)).not.toContain("TOPSECRET");
    }
  });

  it("parses a Pinning Service API endpoint: pins only, id without the token or owner", () => {
    const backend = createBackend("psa+https://api.pinata.cloud/psa?token=TOPSECRET");
    expect(backend.designator).toBe("psa");
    expect(backend.content).toBeUndefined();
    expect(backend.label).toBe("psa+https://api.pinata.cloud/psa?token=***");
    expect(createBackend("psa+https://api.pinata.cloud:443/psa/?token=other&owner=b").id).toBe(
      backend.id,
    );
    expect(createBackend("psa+https://api.pinata.cloud/other?token=x").id).not.toBe(backend.id);
  });

  it("refuses one backend configured twice, whatever the spelling or token", () => {
    expect(() =>
      parseBackends(["ipfs://127.0.0.1:5001", "ipfs+http://127.0.0.1:5001/?token=x"]),
    ).toThrow(DuplicateBackendError);
    expect(() => parseBackends(["helia://a", `helia://${resolve("a")}`])).toThrow(
      DuplicateBackendError,
    );
    const backends = parseBackends([
      "ipfs://127.0.0.1:5001",
      "ipfs://127.0.0.1:5002",
      "helia://a?offline=true",
    ]);
    expect(backends.map((backend) => backend.designator)).toEqual(["ipfs", "ipfs", "helia"]);
  });

  it("stops at the first bad string before building anything else", () => {
    expect(() => parseBackends(["helia://a", "bogus"])).toThrow(InvalidConnectionStringError);
  });
});
