/**
 * Progress of long work on stderr. On a terminal: one line redrawn in place (a bar when the
 * total is known, a count otherwise), at most ten times a second. Elsewhere (pipes, CI logs,
 * files): plain lines, the first at once, then at most one per `intervalMs`, and a last one
 * when the work is done, so a log shows the work moving without escape codes.
 */
export type Progress = {
  /** `total` undefined: the amount of work is not known ahead (a backend's pin listing). */
  update(done: number, total?: number): void;
  done(): void;
};

export type ProgressStream = { isTTY?: boolean; write(text: string): unknown };

export type ProgressOptions = {
  stream?: ProgressStream;
  /** What is counted, e.g. "blocks", "pins listed". */
  unit?: string;
  /** Non-terminal streams: the least time between two lines. Default 5 s. */
  intervalMs?: number;
  now?: () => number;
};

const BAR_WIDTH = 30;
const REDRAW_MS = 100;

export function createProgress(label: string, options: ProgressOptions = {}): Progress {
  const stream = options.stream ?? process.stderr;
  const unit = options.unit ? ` ${options.unit}` : "";
  const now = options.now ?? Date.now;
  const startedAt = now();
  const tty = stream.isTTY === true;
  const intervalMs = tty ? REDRAW_MS : (options.intervalMs ?? 5_000);
  let last: { done: number; total: number | undefined } | undefined;
  let lastWrite = Number.NEGATIVE_INFINITY;
  let finished = false;

  const describe = (done: number, total: number | undefined) => {
    if (total === undefined) return `${label}: ${done}${unit}`;
    const ratio = total > 0 ? Math.min(1, done / total) : 0;
    const percent = `${Math.round(ratio * 100)}%`;
    if (!tty) return `${label}: ${done}/${total}${unit} (${percent})`;
    const filled = Math.round(ratio * BAR_WIDTH);
    return `${label} [${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${percent} (${done}/${total}${unit})`;
  };
  // \r and "erase to the end of the line": a shorter line leaves nothing of a longer one.
  const draw = (text: string) => stream.write(tty ? `\r${text}\x1b[K` : `${text}\n`);

  return {
    update(done, total) {
      if (finished) return;
      last = { done, total };
      const at = now();
      const complete = total !== undefined && done >= total;
      // A terminal always shows the end; plain lines leave it to done().
      if (at - lastWrite < intervalMs && !(tty && complete)) return;
      lastWrite = at;
      draw(describe(done, total));
    },
    done() {
      if (finished || last === undefined) return;
      finished = true;
      const seconds = ((now() - startedAt) / 1_000).toFixed(1);
      if (tty) stream.write(`\r${describe(last.done, last.total)} in ${seconds} s\x1b[K\n`);
      else stream.write(`${label}: done, ${last.done}${unit} in ${seconds} s\n`);
    },
  };
}
