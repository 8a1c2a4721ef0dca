import { PinInactivityError } from "../errors.js";

/**
 * Runs `command` with an inactivity timeout: it is aborted when `progress` has not been
 * called for `timeoutMs` (IPFS Cluster's pin timeout), however long it runs in total while
 * blocks keep arriving. Also aborted by `signal` (shutdown). Resolves or rejects promptly
 * even when the command ignores its signal.
 */
export async function withInactivityTimeout<T>(
  command: (options: { signal: AbortSignal; progress: () => void }) => Promise<T>,
  options: { timeoutMs: number; signal?: AbortSignal },
): Promise<T> {
  const { timeoutMs, signal } = options;
  signal?.throwIfAborted();
  const controller = new AbortController();
  let lastProgress = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let rejectAbort: (reason: unknown) => void = () => {};
  const aborted = new Promise<never>((_, reject) => {
    rejectAbort = reject;
  });
  const abort = (reason: unknown) => {
    controller.abort(reason);
    rejectAbort(reason);
  };
  // One timer re-armed for the remaining time, rather than a new timer per progress call.
  const arm = (delayMs: number) => {
    timer = setTimeout(() => {
      const idleMs = Date.now() - lastProgress;
      if (idleMs >= timeoutMs) abort(new PinInactivityError(timeoutMs));
      else arm(timeoutMs - idleMs);
    }, delayMs);
  };
  arm(timeoutMs);
  const onAbort = () => abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    return await Promise.race([
      command({
        signal: controller.signal,
        progress: () => {
          lastProgress = Date.now();
        },
      }),
      aborted,
    ]);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    // The race may have been won by the command: keep a late abort from becoming unhandled.
    aborted.catch(() => {});
  }
}
