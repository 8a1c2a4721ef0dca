import { describe, expect, it } from "vitest";
import { createProgress, type ProgressStream } from "./progress.js";

function recorder(isTTY: boolean): ProgressStream & { text: () => string } {
  let text = "";
  return {
    isTTY,
    write(chunk: string) {
      text += chunk;
      return true;
    },
    text: () => text,
  };
}

describe("progress", () => {
  it("off a terminal: a plain line at once, then at most one per interval, and a last one", () => {
    const stream = recorder(false);
    let clock = 0;
    const progress = createProgress("replaying chain 1", {
      stream,
      unit: "blocks",
      intervalMs: 5_000,
      now: () => clock,
    });
    progress.update(10, 1_000);
    clock = 1_000;
    progress.update(200, 1_000); // within the interval: not written
    clock = 5_000;
    progress.update(500, 1_000);
    clock = 6_500;
    progress.update(1_000, 1_000);
    progress.done();
    expect(stream.text()).toBe(
      [
        "replaying chain 1: 10/1000 blocks (1%)",
        "replaying chain 1: 500/1000 blocks (50%)",
        "replaying chain 1: done, 1000 blocks in 6.5 s",
        "",
      ].join("\n"),
    );
    expect(stream.text()).not.toContain("\x1b");
  });

  it("on a terminal: one line redrawn in place with a bar, ended by a newline", () => {
    const stream = recorder(true);
    let clock = 0;
    const progress = createProgress("verifying", { stream, unit: "CIDs", now: () => clock });
    progress.update(0, 4);
    clock = 200;
    progress.update(2, 4);
    clock = 250; // under 100 ms since the last draw, but complete: always drawn
    progress.update(4, 4);
    progress.done();
    const text = stream.text();
    expect(text.startsWith("\rverifying [")).toBe(true);
    expect(text).toContain(`[${"#".repeat(15)}${"-".repeat(15)}] 50% (2/4 CIDs)`);
    expect(text).toContain(`[${"#".repeat(30)}] 100% (4/4 CIDs) in 0.3 s\x1b[K\n`);
    expect(text.split("\n")).toHaveLength(2);
  });

  it("counts without a total, and says nothing when nothing happened", () => {
    const stream = recorder(false);
    const progress = createProgress("listing pins", { stream, unit: "pins", now: () => 0 });
    progress.update(3);
    progress.done();
    expect(stream.text()).toBe("listing pins: 3 pins\nlisting pins: done, 3 pins in 0.0 s\n");
    const silent = recorder(false);
    createProgress("nothing", { stream: silent }).done();
    expect(silent.text()).toBe("");
  });
});
