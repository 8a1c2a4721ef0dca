import { describe, expect, it } from "vitest";
import { createTailBuffer } from "./tail-buffer.js";

describe("tail buffer", () => {
  it("keeps the last lines written, across chunk boundaries", async () => {
    const tail = createTailBuffer(3);
    const write = (text: string) =>
      new Promise<void>((resolve) => tail.write(text, () => resolve()));
    await write("postgres │ one\npostgres │ tw");
    await write("o\npostgres │ three\npostgres │ four\n");
    await write("postgres │ partial");
    expect(tail.lines()).toEqual(["postgres │ three", "postgres │ four", "postgres │ partial"]);
  });
});
