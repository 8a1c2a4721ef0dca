import { describe, expect, it } from "vitest";
import { TooManyUploadsError } from "./errors.js";
import { createUploadSlots } from "./upload-slots.js";

describe("createUploadSlots", () => {
  it("holds at most `limit` slots per client, frees them once each, and counts clients apart", () => {
    const slots = createUploadSlots(2);
    const first = slots.acquire("ip:a");
    const second = slots.acquire("ip:a");
    expect(() => slots.acquire("ip:a")).toThrow(TooManyUploadsError);
    expect(slots.inUse("ip:b")).toBe(0);
    slots.acquire("ip:b");
    first();
    first(); // a second release of the same slot frees nothing more
    expect(slots.inUse("ip:a")).toBe(1);
    slots.acquire("ip:a");
    expect(() => slots.acquire("ip:a")).toThrow(TooManyUploadsError);
    second();
    expect(slots.inUse("ip:a")).toBe(1);
  });

  it("0 disables the cap", () => {
    const slots = createUploadSlots(0);
    for (let i = 0; i < 100; i++) slots.acquire("ip:a");
    expect(slots.inUse("ip:a")).toBe(0);
  });
});
