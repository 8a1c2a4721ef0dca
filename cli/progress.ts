/**
 * A one-line progress bar on stderr for long replays; silent when stderr is not a terminal
 * (pipes, CI logs, tests), so machine-read output never carries escape codes.
 */
export type Progress = { update(done: number, total: number): void; done(): void };

export function createProgress(
  label: string,
  stream: NodeJS.WriteStream = process.stderr,
): Progress {
  if (!stream.isTTY) return { update() {}, done() {} };
  let lastDraw = 0;
  let drawn = false;
  const WIDTH = 30;
  return {
    update(done, total) {
      const now = Date.now();
      // Redraw at most ten times a second; always draw the end.
      if (now - lastDraw < 100 && done < total) return;
      lastDraw = now;
      const ratio = total > 0 ? Math.min(1, done / total) : 0;
      const filled = Math.round(ratio * WIDTH);
      stream.write(
        `\r${label} [${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}] ${Math.round(ratio * 100)}% (${done}/${total})`,
      );
      drawn = true;
    },
    done() {
      if (drawn) stream.write("\n");
    },
  };
}
