import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type IpfsDaemon, startIpfsDaemon } from "./harness/kubo.js";
import { createEngineFixture, type EngineFixture } from "./reconciler-fixture.js";

// A large backend's sweep (its first above all) takes minutes: the reconciler, a daemon,
// says it moves with a log line per period. The period is 10 s in production; here 0, so
// a backend of a few pins shows the lines a large one would.
describe("a long sweep logs its progress", () => {
  let daemon: IpfsDaemon;
  let f: EngineFixture;
  const lines: Record<string, unknown>[] = [];

  beforeAll(async () => {
    daemon = await startIpfsDaemon();
    for (let i = 0; i < 3; i++) {
      await daemon.rpc(
        "block/put",
        { format: "raw", "cid-codec": "raw", mhtype: "sha2-256", pin: "true" },
        { field: "file", bytes: new Uint8Array(randomBytes(100)) },
      );
    }
    const logger = pino(
      { level: "info" },
      { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
    );
    f = await createEngineFixture({
      backends: [daemon.connectionString],
      logger,
      engine: { sweepProgressMs: 0 },
    });
  });
  afterAll(async () => {
    await f?.close();
    await daemon?.destroy();
  });

  it("logs the pins listed so far while it lists, and the total when done", async () => {
    // start() swept once already; the lines name the backend by label, never its secrets.
    const progress = lines.filter((line) => line.msg === "sweep in progress");
    const done = lines.find((line) => line.msg === "sweep done");
    // Our three pins, and whatever a fresh Kubo repo pins itself.
    const total = done?.listed as number;
    expect(total).toBeGreaterThanOrEqual(3);
    expect(progress.map((line) => line.listed)).toEqual(
      Array.from({ length: total }, (_, i) => i + 1),
    );
    expect(progress[0]).toMatchObject({ backend: f.backends[0]?.label });
    expect(done).toMatchObject({ backend: f.backends[0]?.label, seconds: expect.any(Number) });
  });
});
