import type { ChildProcess } from "node:child_process";

/**
 * Process-group helpers. Every child the CLI starts leads its own process group, so a
 * signal reaches the child and anything it started, and the CLI decides the order in which
 * parts stop (API and reconciler before the database they use).
 */
export function signalGroup(
  child: ChildProcess | number | undefined,
  signal: NodeJS.Signals,
): boolean {
  const pid = typeof child === "number" ? child : child?.pid;
  if (pid === undefined) return false;
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Children that would outlive the CLI if it died (embedded PostgreSQL, anvil: process groups
 * of their own, with no tether to our stdin as the supervised parts have), each with the
 * signal that stops it cleanly. The forced exit of a second Ctrl-C (cli/main.ts) signals them.
 */
const untethered = new Map<ChildProcess, NodeJS.Signals>();

/** Registers `child` to get `signal` if the CLI is forced to exit while it runs. */
export function stopOnForcedExit(child: ChildProcess, signal: NodeJS.Signals): void {
  untethered.set(child, signal);
  child.once("exit", () => untethered.delete(child));
}

/** Before a forced exit: signals every registered child still running (does not wait). */
export function signalUntethered(): void {
  for (const [child, signal] of untethered) signalGroup(child, signal);
}

/** Resolves when the child has exited (at once if it already has). */
export function exitOf(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => resolve({ code, signal }));
  });
}

/** SIGTERM (or `signal`) to the child's group, SIGKILL after `timeoutMs`; resolves once it exited. */
export async function stopGroup(
  child: ChildProcess,
  options: { signal?: NodeJS.Signals; timeoutMs?: number } = {},
): Promise<void> {
  const exited = exitOf(child);
  signalGroup(child, options.signal ?? "SIGTERM");
  const timer = setTimeout(() => signalGroup(child, "SIGKILL"), options.timeoutMs ?? 10_000);
  await exited;
  clearTimeout(timer);
  // Whatever the leader left behind in its group goes with it.
  signalGroup(child, "SIGKILL");
}

/** Writes each complete line of `stream` to `out` with a prefix; flushes the rest at the end. */
export function prefixLines(
  stream: NodeJS.ReadableStream | null | undefined,
  prefix: string,
  out: NodeJS.WritableStream,
): void {
  forEachLine(stream, (line) => out.write(`${prefix}${line}\n`));
}

/** Calls `onLine` with each complete line of `stream` (no newline), and the rest at the end. */
export function forEachLine(
  stream: NodeJS.ReadableStream | null | undefined,
  onLine: (line: string) => void,
): void {
  if (!stream) return;
  let pending = "";
  stream.setEncoding?.("utf8");
  stream.on("data", (chunk: string | Buffer) => {
    pending += chunk.toString();
    const lines = pending.split("\n");
    pending = lines.pop() ?? "";
    for (const line of lines) onLine(line);
  });
  stream.on("end", () => {
    if (pending.length > 0) onLine(pending);
    pending = "";
  });
}

/** Aborts `controller` when our stdin closes: the supervising parent died or stopped us. */
export function exitWithParent(controller: AbortController): void {
  process.stdin.on("end", () => controller.abort(new Error("the supervising process went away")));
  process.stdin.on("error", () => controller.abort(new Error("the supervising process went away")));
  process.stdin.resume();
}
