import { describe, expect, it } from "vitest";
import { NonRetryableError, RetryableError } from "@/core/errors.js";
import {
  decidePinFailure,
  decideRecover,
  decideUnpinFailure,
  downProbePolicy,
} from "./decide-retry.js";

const at = new Date("2025-01-01T00:00:00Z");
const policy = { retry: { baseMs: 1_000, maxMs: 60_000 }, failedRetryIntervalMs: 3_600_000 };
const later = (ms: number) => new Date(at.getTime() + ms);

describe("decidePinFailure", () => {
  // random () => 1 makes the backoff its ceiling: base·2^(attempts-1).
  it.each([
    {
      name: "a retryable error before the deadline: retried with backoff",
      row: { attempts: 0, deadline_at: later(1), status: "pinning" as const },
      error: new RetryableError("timeout"),
      event: "pin_error",
      decision: "pin",
      reason: "attempt 1",
      next: later(1_000),
    },
    {
      name: "the third attempt waits four times the base",
      row: { attempts: 2, deadline_at: null, status: "pinning" as const },
      error: new Error("connection reset"),
      event: "pin_error",
      decision: "pin",
      reason: "attempt 3",
      next: later(4_000),
    },
    {
      name: "refused for good: given up, retried slowly",
      row: { attempts: 0, deadline_at: later(60_000), status: "pinning" as const },
      error: new NonRetryableError("bad cid"),
      event: "pin_give_up",
      decision: "mark_failed",
      reason: "the backend refused the pin",
      next: later(3_600_000),
    },
    {
      name: "the deadline passed (exactly now): given up",
      row: { attempts: 4, deadline_at: at, status: "pinning" as const },
      error: new RetryableError("timeout"),
      event: "pin_give_up",
      decision: "mark_failed",
      reason: "deadline passed",
      next: later(3_600_000),
    },
    {
      name: "a slow retry of a failed pin fails again: stays given up",
      row: { attempts: 9, deadline_at: null, status: "failed" as const },
      error: new RetryableError("timeout"),
      event: "pin_give_up",
      decision: "mark_failed",
      reason: "the backend refused the pin",
      next: later(3_600_000),
    },
  ])("$name", ({ row, error, event, decision, reason, next }) => {
    const change = decidePinFailure({
      backendId: "b1",
      row: { cid: "bafy", ...row },
      error,
      at,
      policy,
      random: () => 1,
    });
    expect(change).toEqual({
      backendId: "b1",
      cid: "bafy",
      expect: "pinning",
      event,
      set: { attempts: row.attempts + 1, last_error: error.message, next_attempt_at: next },
      log: { decision, reason, outcome: "error", error: error.message },
    });
  });

  it("records a BaseError's short message, not its details", () => {
    const error = new RetryableError("daemon gone", { details: "long story" });
    const change = decidePinFailure({
      backendId: "b1",
      row: { cid: "bafy", attempts: 0, deadline_at: null, status: "queued" },
      error,
      at,
      policy,
    });
    expect(change.set?.last_error).toBe("daemon gone");
  });
});

describe("decideUnpinFailure", () => {
  it.each([
    { attempts: 0, next: 1_000 },
    { attempts: 5, next: 32_000 },
    { attempts: 50, next: 60_000 },
  ])("never gives up: attempt $attempts + 1 waits $next ms", ({ attempts, next }) => {
    const change = decideUnpinFailure({
      backendId: "b1",
      row: { cid: "bafy", attempts },
      error: new NonRetryableError("refused"),
      at,
      retry: policy.retry,
      random: () => 1,
    });
    expect(change.event).toBe("unpin_error");
    expect(change.expect).toBe("unpinning");
    expect(change.set).toEqual({
      attempts: attempts + 1,
      last_error: "refused",
      next_attempt_at: later(next),
    });
  });
});

describe("decideRecover", () => {
  it.each([
    { stopping: true, up: true, reason: "abandoned at shutdown" },
    { stopping: true, up: false, reason: "abandoned at shutdown" },
    { stopping: false, up: true, reason: "command interrupted" },
    { stopping: false, up: false, reason: "backend unavailable" },
  ])("stopping $stopping, up $up: $reason", ({ stopping, up, reason }) => {
    const change = decideRecover({
      backendId: "b1",
      row: { cid: "bafy", status: "unpinning" },
      error: new Error("aborted"),
      stopping,
      up,
    });
    expect(change).toEqual({
      backendId: "b1",
      cid: "bafy",
      expect: "unpinning",
      event: "recover",
      set: { last_error: "aborted" },
      log: { decision: "recover", reason, outcome: "error", error: "aborted" },
    });
    // No attempt is counted: the command was abandoned, not refused.
    expect(change.set).not.toHaveProperty("attempts");
  });
});

describe("downProbePolicy", () => {
  it.each([
    { retry: { baseMs: 5_000, maxMs: 600_000 }, expected: { baseMs: 1_000, maxMs: 30_000 } },
    { retry: { baseMs: 100, maxMs: 2_000 }, expected: { baseMs: 100, maxMs: 2_000 } },
  ])("caps $retry at $expected", ({ retry, expected }) => {
    expect(downProbePolicy(retry)).toEqual(expected);
  });
});
