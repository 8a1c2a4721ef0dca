import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { type LogFormat, prefixRenderer, prettyRenderer } from "../log-format.js";
import { exitOf, forEachLine, stopGroup } from "./processes.js";

/**
 * Runs Quasar's parts as child processes: one log stream (each line prefixed with the
 * part's name, or rendered for a person: `format`), a crashed part restarted with
 * exponential backoff, and an orderly stop when the signal aborts (SIGTERM to each part's
 * process group, SIGKILL after a deadline).
 */
export type ChildSpec = {
  /** Short name used as the log prefix, e.g. "indexer". */
  name: string;
  command: string;
  args: string[];
  env: Record<string, string | undefined>;
  cwd: string;
  /**
   * Polled after the child starts (every 250 ms, at most `readyTimeoutMs`) before the next
   * child in the list starts; the first start only.
   */
  ready?: () => Promise<boolean>;
  /**
   * A liveness check beyond "the process runs" (a wedged indexer still runs): polled every
   * `intervalMs` (default 5 s); a child whose check answers false, or throws, on every poll
   * for `unhealthyAfterMs` is stopped and so restarted like a crash.
   */
  health?: { check: () => Promise<boolean>; intervalMs?: number; unhealthyAfterMs: number };
  /** Lines not shown (`quasar dev` without --verbose: the indexer's empty blocks). */
  hide?: (line: string) => boolean;
};

export type SupervisorEvent =
  | { kind: "started"; name: string; pid: number; attempt: number }
  | { kind: "exited"; name: string; code: number | null; signal: NodeJS.Signals | null }
  | { kind: "restarting"; name: string; delayMs: number; attempt: number }
  | { kind: "unhealthy"; name: string; pid: number; forMs: number };

export type SupervisorOptions = {
  children: ChildSpec[];
  /** Aborting it stops every child; `done` resolves when all have exited. */
  signal: AbortSignal;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
  /** First restart delay; doubles per consecutive crash. Default 1 s. */
  backoffBaseMs?: number;
  /** Longest restart delay. Default 60 s. */
  backoffMaxMs?: number;
  /** A child that ran this long before crashing starts again from the first delay. Default 60 s. */
  stableAfterMs?: number;
  /** Deadline between SIGTERM and SIGKILL. Default 15 s. */
  stopTimeoutMs?: number;
  onEvent?: (event: SupervisorEvent) => void;
  /** Longest wait for a child's `ready` before the next one starts anyway. Default 120 s. */
  readyTimeoutMs?: number;
  /** `json` (default): each line as the part wrote it, prefixed; `pretty`: cli/log-format.ts. */
  format?: LogFormat;
  /** ANSI colours in the `pretty` format. Default false. */
  color?: boolean;
};

export type Supervisor = {
  /** Resolves when every child has stopped after the signal aborted. */
  done: Promise<void>;
  /** Process ids of the children running now. */
  pids(): number[];
};

/** The restart delay after `failures` consecutive crashes (1-based), with ±20 % jitter. */
export function restartDelayMs(
  failures: number,
  baseMs: number,
  maxMs: number,
  random = Math.random,
): number {
  const exponential = Math.min(maxMs, baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exponential * (0.8 + 0.4 * random()));
}

export function superviseChildren(options: SupervisorOptions): Supervisor {
  const out = options.out ?? process.stdout;
  const err = options.err ?? process.stderr;
  const baseMs = options.backoffBaseMs ?? 1_000;
  const maxMs = options.backoffMaxMs ?? 60_000;
  const stableAfterMs = options.stableAfterMs ?? 60_000;
  const width = Math.max(...options.children.map((child) => child.name.length));
  const render =
    options.format === "pretty"
      ? prettyRenderer(width, options.color ?? false)
      : prefixRenderer(width);
  const running = new Map<string, ChildProcess>();

  const runOne = async (spec: ChildSpec, started: () => void): Promise<void> => {
    let failures = 0;
    let attempt = 0;
    const note = (text: string) => err.write(`${render(spec.name, text)}\n`);
    while (!options.signal.aborted) {
      attempt++;
      const startedAt = Date.now();
      const child = spawn(spec.command, spec.args, {
        cwd: spec.cwd,
        env: spec.env,
        detached: true,
        // stdin stays open: the child exits when it closes (we died), see exitWithParent.
        stdio: ["pipe", "pipe", "pipe"],
      });
      child.on("error", (error) => note(`failed to start: ${error.message}`));
      const show = (stream: NodeJS.WritableStream) => (line: string) => {
        if (!spec.hide?.(line)) stream.write(`${render(spec.name, line)}\n`);
      };
      forEachLine(child.stdout, show(out));
      forEachLine(child.stderr, show(err));
      running.set(spec.name, child);
      if (child.pid !== undefined)
        options.onEvent?.({ kind: "started", name: spec.name, pid: child.pid, attempt });

      if (attempt === 1) void waitReady(spec).finally(started);
      const stopOnAbort = () =>
        void stopGroup(child, { timeoutMs: options.stopTimeoutMs ?? 15_000 });
      options.signal.addEventListener("abort", stopOnAbort, { once: true });
      const stopWatching = spec.health
        ? watchHealth(spec.name, spec.health, child, note)
        : () => {};
      const { code, signal } = await exitOf(child);
      stopWatching();
      options.signal.removeEventListener("abort", stopOnAbort);
      running.delete(spec.name);
      options.onEvent?.({ kind: "exited", name: spec.name, code, signal });
      if (options.signal.aborted) return;

      failures = Date.now() - startedAt >= stableAfterMs ? 1 : failures + 1;
      const delayMs = restartDelayMs(failures, baseMs, maxMs);
      note(`exited (${signal ?? `code ${code}`}); restarting in ${(delayMs / 1000).toFixed(1)} s`);
      options.onEvent?.({ kind: "restarting", name: spec.name, delayMs, attempt: attempt + 1 });
      try {
        await sleep(delayMs, undefined, { signal: options.signal });
      } catch {
        return;
      }
    }
  };

  /** Polls a child's health; stops the child once it has been unhealthy long enough. */
  const watchHealth = (
    name: string,
    health: NonNullable<ChildSpec["health"]>,
    child: ChildProcess,
    note: (text: string) => void,
  ): (() => void) => {
    let unhealthySince: number | undefined;
    let polling = false;
    const timer = setInterval(async () => {
      if (polling) return;
      polling = true;
      try {
        const healthy = await health.check().catch(() => false);
        const now = Date.now();
        if (healthy) unhealthySince = undefined;
        else unhealthySince ??= now;
        if (unhealthySince !== undefined && now - unhealthySince >= health.unhealthyAfterMs) {
          const forMs = now - unhealthySince;
          unhealthySince = undefined;
          note(`unhealthy for ${Math.round(forMs / 1000)} s; stopping it`);
          if (child.pid !== undefined)
            options.onEvent?.({ kind: "unhealthy", name, pid: child.pid, forMs });
          void stopGroup(child, { timeoutMs: options.stopTimeoutMs ?? 15_000 });
        }
      } finally {
        polling = false;
      }
    }, health.intervalMs ?? 5_000);
    return () => clearInterval(timer);
  };

  const waitReady = async (spec: ChildSpec): Promise<void> => {
    if (!spec.ready) return;
    const deadline = Date.now() + (options.readyTimeoutMs ?? 120_000);
    while (!options.signal.aborted && Date.now() < deadline && running.has(spec.name)) {
      if (await spec.ready()) return;
      await sleep(250);
    }
  };

  // Each child starts once the one before it is ready (or gave up being ready).
  const runs: Promise<void>[] = [];
  let previousStarted: Promise<void> = Promise.resolve();
  for (const spec of options.children) {
    let markStarted: () => void = () => {};
    const thisStarted = new Promise<void>((resolve) => {
      markStarted = resolve;
    });
    const gate = previousStarted;
    runs.push(
      gate.then(() => {
        if (options.signal.aborted) {
          markStarted();
          return;
        }
        return runOne(spec, markStarted).finally(markStarted);
      }),
    );
    previousStarted = thisStarted;
  }
  const done = Promise.all(runs).then(() => undefined);
  return {
    done,
    pids: () =>
      [...running.values()].flatMap((child) => (child.pid === undefined ? [] : [child.pid])),
  };
}
