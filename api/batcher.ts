/**
 * Group commit for small writes: concurrent callers' items are written together, one
 * transaction per batch, so the database's commit cost (a WAL flush) is paid once per batch
 * instead of once per upload. No latency is added when idle: an item is written at once if
 * a writer is free; items arriving while all writers are busy form the next batch.
 *
 * Each caller's promise settles only after its own item is durably written (or failed).
 * When a batch fails, its items are retried one by one, so one bad item never fails the
 * others with it.
 */
export type Batcher<T> = (item: T) => Promise<void>;

export type BatcherOptions = {
  /** Most items per batch. */
  maxBatch: number;
  /** Batches written at the same time (keep it below the connection pool's size). */
  maxWriters: number;
};

export function createBatcher<T>(
  write: (items: readonly T[]) => Promise<void>,
  options: BatcherOptions,
): Batcher<T> {
  if (options.maxBatch < 1 || options.maxWriters < 1)
    throw new RangeError("maxBatch and maxWriters must be ≥ 1");
  type Waiting = { item: T; resolve: () => void; reject: (error: unknown) => void };
  let queue: Waiting[] = [];
  let writers = 0;

  const run = async (batch: Waiting[]) => {
    try {
      await write(batch.map((w) => w.item));
      for (const w of batch) w.resolve();
    } catch (error) {
      if (batch.length === 1) {
        batch[0]?.reject(error);
        return;
      }
      // Find the culprit(s): every item on its own.
      for (const w of batch) {
        try {
          await write([w.item]);
          w.resolve();
        } catch (single) {
          w.reject(single);
        }
      }
    }
  };

  const kick = () => {
    while (writers < options.maxWriters && queue.length > 0) {
      const batch = queue.slice(0, options.maxBatch);
      queue = queue.slice(batch.length);
      writers += 1;
      void run(batch).finally(() => {
        writers -= 1;
        kick();
      });
    }
  };

  return (item) =>
    new Promise<void>((resolve, reject) => {
      queue.push({ item, resolve, reject });
      kick();
    });
}
