import { describe, expect, it } from "vitest";
import { announcesChainEvents, indexerLiveChannel } from "./wakeup-channel.js";

describe("the indexer's live-query announcements", () => {
  it("are on Ponder's channel of the indexer schema", () => {
    expect(indexerLiveChannel("quasar_indexer")).toBe("quasar_indexer_live_query");
  });

  it.each([
    ['["_ponder_checkpoint","event"]', true],
    ['["event"]', true],
    ['["_ponder_checkpoint"]', false],
    ["[]", false],
    ['{"event":1}', false],
    ['"event"', false],
    ["not json", false],
    ["", false],
  ])("%j names chain events: %s", (payload, expected) => {
    expect(announcesChainEvents(payload)).toBe(expected);
  });

  it("reads a missing payload as none", () => {
    expect(announcesChainEvents(undefined)).toBe(false);
  });
});
