import { describe, expect, it } from "vitest";
import { parseListQuery, parsePinInput, parseRfc3339 } from "./input.js";

const CID_V0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
const CID_V1 = "bafybeie5nqv6kd3qnfjupgvz34woh3oksc3iau6abmyajn7qvtf6d2ho34";

describe("parseRfc3339: whole ms that keep which requests match", () => {
  it.each<[string, "up" | "down", string]>([
    ["2024-01-02T03:04:05Z", "up", "2024-01-02T03:04:05.000Z"],
    ["2024-01-02T03:04:05.123Z", "up", "2024-01-02T03:04:05.123Z"],
    ["2024-01-02T03:04:05.123000000Z", "up", "2024-01-02T03:04:05.123Z"],
    ["2024-01-02T03:04:05.1234Z", "up", "2024-01-02T03:04:05.124Z"],
    ["2024-01-02T03:04:05.1234Z", "down", "2024-01-02T03:04:05.123Z"],
    ["2024-01-02T05:04:05.5+02:00", "down", "2024-01-02T03:04:05.500Z"],
    ["2024-01-02t03:04:05z", "down", "2024-01-02T03:04:05.000Z"],
  ])("%s rounded %s", (text, round, expected) => {
    expect(parseRfc3339(text, round, "before").toISOString()).toBe(expected);
  });

  it.each([
    "2024-01-02",
    "2024-01-02 03:04:05Z",
    "2024-13-02T03:04:05Z",
    "now",
    "2024-01-02T03:04:05",
  ])("refuses %j", (text) => {
    expect(() => parseRfc3339(text, "up", "before")).toThrow(/RFC 3339/);
  });
});

describe("parseListQuery", () => {
  it("defaults: exact match, pinned only, limit 10", () => {
    expect(parseListQuery({})).toEqual({ match: "exact", statuses: ["pinned"], limit: 10 });
  });

  it("normalises and dedupes CIDs, parses every parameter, ignores unknown ones", () => {
    expect(
      parseListQuery({
        cid: `${CID_V0},${CID_V0}`,
        name: "n",
        match: "ipartial",
        status: "queued,failed",
        limit: "1000",
        meta: '{"a":"b"}',
        unknown: "x",
      }),
    ).toEqual({
      cids: ["bafybeie5nqv6kd3qnfjupgvz34woh3oksc3iau6abmyajn7qvtf6d2ho34"],
      name: "n",
      match: "ipartial",
      statuses: ["queued", "failed"],
      limit: 1000,
      meta: { a: "b" },
    });
  });

  it.each<[string, Record<string, string>]>([
    ["limit 0", { limit: "0" }],
    ["limit 1001", { limit: "1001" }],
    ["limit 1.5", { limit: "1.5" }],
    ["empty cid list item", { cid: `${CID_V1},` }],
    ["11 CIDs", { cid: Array(11).fill(CID_V1).join(",") }],
    ["a path", { cid: `${CID_V1}/a` }],
    ["256-character name", { name: "x".repeat(256) }],
    ["meta array", { meta: "[]" }],
    ["meta number value", { meta: '{"a":1}' }],
    ["status empty", { status: "" }],
    ["status pin_error (Cluster's, not the spec's)", { status: "pin_error" }],
  ])("400 for %s", (_, query) => {
    expect(() => parseListQuery(query)).toThrow();
  });

  it("a 255-character name (in characters, not bytes) is accepted", () => {
    expect(parseListQuery({ name: "é".repeat(255) }).name).toHaveLength(255);
  });
});

describe("parsePinInput", () => {
  it("keeps the CID as given and its normalised form; defaults", () => {
    expect(parsePinInput({ cid: CID_V0 })).toEqual({
      cid: CID_V1,
      cidGiven: CID_V0,
      name: null,
      origins: [],
      meta: {},
    });
  });

  it.each<[string, unknown]>([
    ["no cid", {}],
    ["cid not a string", { cid: 1 }],
    ["bad cid", { cid: "nope" }],
    ["name too long", { cid: CID_V1, name: "n".repeat(256) }],
    ["21 origins", { cid: CID_V1, origins: Array(21).fill("/ip4/1.2.3.4/tcp/1") }],
    ["an origin not a multiaddr", { cid: CID_V1, origins: ["1.2.3.4:4001"] }],
    ["meta value not a string", { cid: CID_V1, meta: { a: 1 } }],
    ["an array", [CID_V1]],
  ])("refuses %s", (_, body) => {
    expect(() => parsePinInput(body)).toThrow();
  });
});
