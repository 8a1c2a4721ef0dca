import type { ChildProcess } from "node:child_process";

/**
 * Child processes tied to the test process's life (anvil, Kubo): each runs
 * under a tiny shell wrapper that kills it as soon as our end of its stdin pipe closes, so a
 * test worker that dies (even by SIGKILL) takes its servers with it.
 */

/**
 * Runs "$0" "$@" in the background, prints its pid, and kills it when stdin reaches EOF (our
 * end of the pipe closed: stop() or this process died). The wrapper exits with the child's
 * status, so a failed start (port taken) is seen at once. fd 3 keeps stdin for the watcher,
 * because background jobs of a non-interactive shell get /dev/null as stdin.
 */
export const TETHER_WRAPPER = `exec 3<&0
"$0" "$@" &
child=$!
echo "$child"
( read -r _ <&3; kill "$child" 2>/dev/null ) &
wait "$child"`;

/** A running wrapper and, once it has printed it, the pid of the process it watches. */
export type Tethered = { wrapper: ChildProcess; pid: number | undefined };

const running = new Set<Tethered>();
let exitHookInstalled = false;

/** Tracks a wrapper so a test process that exits without stopping it still kills it. */
export function track(proc: Tethered): void {
  running.add(proc);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers run synchronously, so only a signal can be sent here.
  process.on("exit", () => {
    for (const each of running) {
      if (each.pid) safeKill(each.pid, "SIGKILL");
      each.wrapper.kill("SIGKILL");
    }
  });
}

export function untrack(proc: Tethered): void {
  running.delete(proc);
}

/** process.kill that ignores a process already gone. */
export function safeKill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}
