import { Writable } from "node:stream";

/**
 * A sink that keeps only the last `maxLines` lines written to it: where `quasar dev` sends
 * PostgreSQL's and anvil's own output without --verbose, so a start-up failure can still
 * show what they said last.
 */
export type TailBuffer = Writable & { lines(): string[] };

export function createTailBuffer(maxLines = 50): TailBuffer {
  const kept: string[] = [];
  let pending = "";
  const sink = new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      const parts = (pending + chunk.toString()).split("\n");
      pending = parts.pop() ?? "";
      kept.push(...parts);
      if (kept.length > maxLines) kept.splice(0, kept.length - maxLines);
      callback();
    },
  });
  return Object.assign(sink, {
    lines: () => (pending === "" ? [...kept] : [...kept, pending]).slice(-maxLines),
  });
}
