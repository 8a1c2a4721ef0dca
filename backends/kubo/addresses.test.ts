import { describe, expect, it } from "vitest";
import { p2pAddresses } from "./pins.js";

const ID = "12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN";

describe("p2pAddresses: Kubo's `id` answer as Pinning Service API delegates", () => {
  it.each<[string, unknown, string[]]>([
    [
      "listed addresses keep or gain /p2p/<id>",
      { ID, Addresses: [`/ip4/127.0.0.1/tcp/4001/p2p/${ID}`, "/ip4/127.0.0.1/udp/4001/quic-v1"] },
      [`/ip4/127.0.0.1/tcp/4001/p2p/${ID}`, `/ip4/127.0.0.1/udp/4001/quic-v1/p2p/${ID}`],
    ],
    ["offline (no addresses): the bare peer id", { ID, Addresses: null }, [`/p2p/${ID}`]],
    ["junk entries are skipped", { ID, Addresses: [3, "x"] }, [`/p2p/${ID}`]],
    ["no ID: nothing", { Addresses: ["/ip4/1.2.3.4/tcp/1"] }, []],
  ])("%s", (_, answer, expected) => {
    expect(p2pAddresses(answer)).toEqual(expected);
  });
});
