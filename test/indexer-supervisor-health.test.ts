/**
 * The supervisor restarts a child that runs but fails its health check for long enough (a
 * wedged indexer still runs and answers /ready: issue 9), and leaves a healthy one alone.
 * The children are real processes; the health answer is the input under test.
 */
import { Writable } from "node:stream";
import { expect, test } from "vitest";
import { type SupervisorEvent, superviseChildren } from "@/cli/runtime/supervisor.js";

const quiet = () =>
  new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });

async function run(healthy: () => boolean, forMs: number): Promise<SupervisorEvent[]> {
  const events: SupervisorEvent[] = [];
  const controller = new AbortController();
  const supervisor = superviseChildren({
    children: [
      {
        name: "indexer",
        command: process.execPath,
        args: ["-e", "setInterval(() => {}, 1000)"],
        env: {},
        cwd: process.cwd(),
        health: { check: async () => healthy(), intervalMs: 100, unhealthyAfterMs: 800 },
      },
    ],
    signal: controller.signal,
    backoffBaseMs: 100,
    stopTimeoutMs: 2_000,
    out: quiet(),
    err: quiet(),
    onEvent: (event) => events.push(event),
  });
  await new Promise((resolve) => setTimeout(resolve, forMs));
  controller.abort();
  await supervisor.done;
  return events;
}

test("a child unhealthy for unhealthyAfterMs is stopped and started again", async () => {
  const events = await run(() => false, 3_000);
  const unhealthy = events.filter((event) => event.kind === "unhealthy");
  expect(unhealthy.length).toBeGreaterThanOrEqual(1);
  expect(unhealthy[0]).toMatchObject({ name: "indexer" });
  expect((unhealthy[0] as { forMs: number }).forMs).toBeGreaterThanOrEqual(800);
  const starts = events.filter((event) => event.kind === "started");
  expect(starts.length).toBeGreaterThanOrEqual(2);
});

test("a healthy child, or one unhealthy only briefly, keeps running", async () => {
  let calls = 0;
  // Unhealthy on every third poll only: never for 800 ms in a row.
  const events = await run(() => ++calls % 3 !== 0, 2_500);
  expect(events.filter((event) => event.kind === "unhealthy")).toEqual([]);
  expect(events.filter((event) => event.kind === "started")).toHaveLength(1);
});
