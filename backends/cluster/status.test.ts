import { describe, expect, it } from "vitest";
import { QUASAR_PIN_NAME } from "../pin-backend.js";
import {
  copiesOf,
  firstError,
  inPinset,
  listingName,
  needsRecovery,
  parsePinInfo,
  underWay,
} from "./status.js";

const CID_TEXT = "bafkreie77hayc7tvjdwjuiqixytlpjsd3v7nrnrwhucgfksxhtuockkbiu";

/** A GlobalPinInfo as Cluster 1.1.6 streams it, with the given per-peer statuses. */
function info(statuses: string[], extra: Record<string, unknown> = {}) {
  return parsePinInfo({
    cid: CID_TEXT,
    name: "",
    allocations: [],
    metadata: null,
    peer_map: Object.fromEntries(
      statuses.map((status, i) => [
        `peer${i}`,
        { status, error: status.endsWith("error") ? `boom ${i}` : "" },
      ]),
    ),
    ...extra,
  });
}

describe("reading Cluster's GlobalPinInfo", () => {
  it("counts the peers that pinned it as copies", () => {
    expect(copiesOf(info(["pinned", "pinned", "pinning"]) as never)).toBe(2);
    expect(copiesOf(info(["cluster_error", "pinned"]) as never)).toBe(1);
    expect(copiesOf(info(["remote", "pin_queued"]) as never)).toBe(0);
  });

  it("tells a pin in the pinset from a CID no peer tracks", () => {
    expect(inPinset(info(["unpinned", "unpinned"]) as never)).toBe(false);
    expect(inPinset(info(["unpinned", "remote"]) as never)).toBe(true);
    expect(inPinset(info(["pin_error"]) as never)).toBe(true);
    expect(inPinset(info([]) as never)).toBe(false);
  });

  it("asks for a recover on pin_error or unexpectedly_unpinned only", () => {
    expect(needsRecovery(info(["pinned", "pin_error"]) as never)).toBe(true);
    expect(needsRecovery(info(["unexpectedly_unpinned"]) as never)).toBe(true);
    expect(needsRecovery(info(["pinned", "cluster_error", "pinning"]) as never)).toBe(false);
    expect(underWay(info(["pinning", "pin_queued", "pinned"]) as never)).toBe(2);
    // A peer the pin is allocated to that has not heard of it yet is still to pin it.
    expect(
      underWay(info(["pinned", "unpinned"], { allocations: ["peer0", "peer1"] }) as never),
    ).toBe(1);
    expect(underWay(info(["pinned", "unpinned"], { allocations: ["peer0"] }) as never)).toBe(0);
    expect(underWay(info(["pinned", "unpinned"]) as never)).toBe(1);
    expect(firstError(info(["pinned", "pin_error"]) as never)).toBe("boom 1");
  });

  it("names a pin Quasar's only when Quasar's metadata mark is on it", () => {
    const ours = info(["pinned"], { name: "anything", metadata: { quasar: "owned" } });
    expect(listingName(ours as never)).toBe(QUASAR_PIN_NAME);
    const impostor = info(["pinned"], { name: QUASAR_PIN_NAME, metadata: {} });
    expect(listingName(impostor as never)).toBeUndefined();
    const foreign = info(["pinned"], { name: "backup" });
    expect(listingName(foreign as never)).toBe("backup");
  });

  it("refuses what is not a GlobalPinInfo", () => {
    expect(parsePinInfo({ name: "x" })).toBeUndefined();
    expect(parsePinInfo("text")).toBeUndefined();
  });
});
