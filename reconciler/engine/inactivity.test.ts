import { describe, expect, it } from "vitest";
import { PinInactivityError } from "../errors.js";
import { withInactivityTimeout } from "./inactivity.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("withInactivityTimeout", () => {
  it("lets a long command finish while it keeps making progress", async () => {
    const result = await withInactivityTimeout(
      async ({ progress }) => {
        for (let i = 0; i < 8; i++) {
          await sleep(40);
          progress();
        }
        return "done";
      },
      { timeoutMs: 100 },
    );
    expect(result).toBe("done");
  });

  it("aborts a command that stops making progress, even one ignoring its signal", async () => {
    let seenSignal: AbortSignal | undefined;
    const started = Date.now();
    await expect(
      withInactivityTimeout(
        async ({ signal, progress }) => {
          seenSignal = signal;
          progress();
          await sleep(5_000);
        },
        { timeoutMs: 100 },
      ),
    ).rejects.toBeInstanceOf(PinInactivityError);
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(seenSignal?.aborted).toBe(true);
  });

  it("aborts with the caller's reason on shutdown", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("shutting down")), 30);
    await expect(
      withInactivityTimeout(() => sleep(5_000), { timeoutMs: 10_000, signal: controller.signal }),
    ).rejects.toThrow("shutting down");
  });
});
