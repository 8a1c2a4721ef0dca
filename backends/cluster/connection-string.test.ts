import { describe, expect, it } from "vitest";
import { splitConnectionString } from "../connection-string.js";
import { createBackend, parseBackends } from "../index.js";
import { parseClusterConnectionString } from "./connection-string.js";

const parse = (raw: string) =>
  parseClusterConnectionString(raw, splitConnectionString(raw, []), []);

describe("cluster connection strings", () => {
  it.each([
    ["cluster+http://127.0.0.1:9094", "http://127.0.0.1:9094/"],
    ["cluster://10.0.0.2", "http://10.0.0.2:9094/"],
    ["cluster+https://cluster.example.com/api/", "https://cluster.example.com:9094/api"],
    ["cluster+https://cluster.example.com:443", "https://cluster.example.com/"],
  ])("%s → %s", (raw, baseUrl) => {
    const params = parse(raw);
    expect(params.baseUrl.toString()).toBe(baseUrl);
    expect(params.authorization).toBeUndefined();
    expect(params.replicationMin).toBeUndefined();
    expect(params.replicationMax).toBeUndefined();
    const backend = createBackend(raw);
    expect(backend.designator).toBe("cluster");
    expect(backend.id).toMatch(/^cluster-[0-9a-f]{12}$/);
    // Pin role only: bytes go through a content backend.
    expect(backend.content).toBeUndefined();
    expect(backend.pins.countsCopies).toBe(true);
  });

  it("reads the replication factors; a min alone is also the max", () => {
    expect(parse("cluster+http://h:9094?replication-min=2&replication-max=3")).toMatchObject({
      replicationMin: 2,
      replicationMax: 3,
    });
    expect(parse("cluster+http://h:9094?replication-min=2")).toMatchObject({
      replicationMin: 2,
      replicationMax: 2,
    });
    expect(parse("cluster+http://h:9094?replication-min=-1&replication-max=-1")).toMatchObject({
      replicationMin: -1,
      replicationMax: -1,
    });
    expect(parse("cluster+http://h:9094?replication-max=4")).toMatchObject({
      replicationMin: undefined,
      replicationMax: 4,
    });
  });

  it("keeps secrets out of ids and labels; options do not change the id", () => {
    const basic = parse("cluster+https://quasar:s3cr3t@cluster.example.com:9094");
    expect(basic.authorization).toBe(`Basic ${Buffer.from("quasar:s3cr3t").toString("base64")}`);
    expect(basic.label).toBe("cluster+https://***@cluster.example.com:9094");
    const bearer = parse("cluster+https://cluster.example.com:9094?token=eyJ.jwt.sig");
    expect(bearer.authorization).toBe("Bearer eyJ.jwt.sig");
    expect(bearer.label).not.toContain("eyJ");
    const ids = [
      "cluster+https://cluster.example.com:9094",
      "cluster+https://quasar:s3cr3t@cluster.example.com:9094",
      "cluster+https://cluster.example.com:9094?token=other&replication-min=2",
      "cluster+https://cluster.example.com:9094?exclusive=true&origins=/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWx",
    ].map((raw) => createBackend(raw).id);
    expect(new Set(ids).size).toBe(1);
    expect(ids[0]).not.toContain("s3cr3t");
    expect(createBackend("cluster+http://cluster.example.com:9094").id).not.toBe(ids[0]);
    // Two spellings of one cluster are one backend.
    expect(() =>
      parseBackends(["cluster+http://h:9094", "cluster+http://h:9094?replication-min=2"]),
    ).toThrow(/configured twice/);
  });

  it("reads the pins kept under way at once", () => {
    expect(parse("cluster+http://h:9094").concurrency).toBe(128);
    expect(parse("cluster+http://h:9094?concurrency=16").concurrency).toBe(16);
    expect(createBackend("cluster+http://h:9094?concurrency=16").pins.pinConcurrency).toBe(16);
    expect(() => parse("cluster+http://h:9094?concurrency=0")).toThrow(/concurrency must be/);
  });

  it("reads origins and exclusive", () => {
    const params = parse(
      "cluster+http://h:9094?exclusive=true&origins=/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWa,/dns4/x/tcp/4001/p2p/12D3KooWb",
    );
    expect(params.exclusive).toBe(true);
    expect(params.origins).toEqual([
      "/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWa",
      "/dns4/x/tcp/4001/p2p/12D3KooWb",
    ]);
  });
});
