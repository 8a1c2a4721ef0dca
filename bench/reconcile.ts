/**
 * Desired-set benchmark: the reconciler's first fold, the full-sweep diff and one incremental
 * step, at N CIDs of history.
 *
 *   tsx bench/reconcile.ts [--cids 1000000] [--rounds 50]
 *
 * Builds an indexer event table of N valid PinHash events (CIDv1 raw of sha256(i), 1000
 * per block, one registered contract) in a fresh schema, streamed: CIDs are made, inserted
 * and written to the backend listing one batch at a time, so the bench's own memory does not
 * grow with N. Then it measures:
 *  (a) firstFoldSeconds / firstFoldPeakRssMB: in a fresh child process, the desired store's
 *      first step over the whole history, as a reconciler's first start runs it;
 *  (b) fullDiffSeconds / peakRssMB: in a fresh child process, stream the desired set sorted
 *      from Postgres (in pages) and a generated backend listing of N pins (streamed from a
 *      file, one CID a line) with a few thousand differences each way, through
 *      reconciler/diff.ts; a child's peak RSS is the whole process's, Node itself included;
 *  (c) incrementalStepMs / incrementalStepP99Ms: median and p99 of steps that each follow
 *      one new event on top of the history (half with the event still pending, half folding
 *      it once final);
 *  (d) roundTripsMs / roundTripsP99Ms, the baseline for (c): after each step, a transaction
 *      of as many trivial statements as a step sends (STEP_STATEMENTS), on the same pool.
 *      It is the floor a step of that many round trips has on this machine and database
 *      (each costs a wake-up of the server and of Node), measured under the same conditions.
 * The last line of output is the result as JSON.
 */

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { sql } from "kysely";
import { CID } from "multiformats/cid";
import { create as createDigest } from "multiformats/hashes/digest";
import pino from "pino";
import { connectDatabase } from "@/db/connect.js";
import { createDesiredStore } from "@/db/desired/index.js";
import { migrateToLatest } from "@/db/migrations/index.js";
import { diffPins } from "@/reconciler/diff.js";
import { blockTime, CONTRACT_A, eventId, register } from "@/test/desired/history.js";
import { createIndexerTables, insertEvents, setProgress } from "@/test/desired/indexer.js";
import { createTestSchema, TEST_DATABASE_URL } from "@/test/harness/postgres.js";
import { percentile } from "./percentile.js";

const PINS_PER_BLOCK = 1_000;
const INSERT_BATCH = 50_000;
const TTL_MS = 14 * 24 * 3600 * 1000;
/** Statements an incremental step sends (begin, lock, … commit), counted with a query log. */
const STEP_STATEMENTS = 9;

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index === -1 ? fallback : (process.argv[index + 1] ?? fallback);
}

function count(name: string, fallback: number): number {
  const value = Number(argument(name, String(fallback)));
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new Error(`--${name} expects a positive whole number`);
  return value;
}

function log(message: string, fields: Record<string, unknown> = {}): void {
  console.log(JSON.stringify({ msg: message, ...fields }));
}

/** The i-th benchmark CID: CIDv1, raw codec, sha256 of the decimal string. */
function benchCid(i: number): string {
  const bytes = createHash("sha256").update(String(i)).digest();
  return CID.createV1(0x55, createDigest(0x12, bytes)).toString();
}

function txHash(i: number): string {
  return `0x${i.toString(16).padStart(64, "0")}`;
}

/** Inserts PinHash rows for CIDs [from, to) straight into the event table, in unnest batches. */
async function insertPins(
  db: ReturnType<typeof connect>,
  schema: string,
  cids: string[],
  from: number,
) {
  for (let start = 0; start < cids.length; start += INSERT_BATCH) {
    const batch = cids.slice(start, start + INSERT_BATCH);
    const cols = {
      id: [] as string[],
      block: [] as string[],
      timestamp: [] as string[],
      tx: [] as string[],
      log: [] as number[],
    };
    batch.forEach((_, offset) => {
      const i = from + start + offset;
      const block = 2n + BigInt(Math.floor(i / PINS_PER_BLOCK));
      const logIndex = i % PINS_PER_BLOCK;
      cols.id.push(eventId(1, block, logIndex));
      cols.block.push(block.toString());
      cols.timestamp.push(blockTime(block).toString());
      cols.tx.push(txHash(i));
      cols.log.push(logIndex);
    });
    await sql`insert into ${sql.id(schema, "event")}
      select id, 1, block_number, ${`0x${"ab".repeat(32)}`}, block_timestamp, transaction_hash, log_index, ${CONTRACT_A}, 'pin_hash', null, cid, cid, null
      from unnest(${cols.id}::text[], ${cols.block}::int8[], ${cols.timestamp}::int8[], ${cols.tx}::text[], ${cols.log}::int4[], ${batch}::text[])
        as t(id, block_number, block_timestamp, transaction_hash, log_index, cid)`.execute(db);
  }
}

function connect() {
  return connectDatabase({
    databaseUrl: TEST_DATABASE_URL,
    maxConnections: 3,
  });
}

/** A child phase's database and desired store, on the schemas its parent passed. */
function childStore() {
  const db = connect();
  const store = createDesiredStore({
    db,
    indexerSchema: argument("indexer-schema", ""),
    reconcilerSchema: argument("reconciler-schema", ""),
    ttlMs: TTL_MS,
  });
  return { db, store };
}

/** Child process: the first step over the whole history, as a reconciler's first start. */
async function foldPhase(): Promise<void> {
  const { db, store } = childStore();
  const started = performance.now();
  // As the engine steps: at most 20,000 changes handed out, the rest left to its sweep.
  const { truncated } = await store.boundedStep({
    now: new Date(Number(argument("now", "0"))),
    maxChanges: 20_000,
  });
  const seconds = (performance.now() - started) / 1000;
  const { desired } = await store.counts();
  await db.destroy();
  console.log(
    JSON.stringify({
      seconds,
      peakRssMB: process.resourceUsage().maxRSS / 1024,
      desired,
      truncated,
    }),
  );
}

/** Child process: the full diff alone, so its peak RSS is the diff's. */
async function diffPhase(): Promise<void> {
  const { db, store } = childStore();
  // The backend listing, streamed from the file in pages of lines (as a `pin ls` stream
  // would arrive in chunks).
  async function* listing() {
    let rest = "";
    for await (const chunk of createReadStream(argument("listing", ""), {
      encoding: "utf8",
      highWaterMark: 1 << 20,
    })) {
      const lines = (rest + chunk).split("\n");
      rest = lines.pop() ?? "";
      yield lines;
    }
    if (rest.length > 0) yield [rest];
  }
  const started = performance.now();
  const result = await diffPins(store.streamDesiredText(), listing());
  const seconds = (performance.now() - started) / 1000;
  await db.destroy();
  console.log(
    JSON.stringify({
      seconds,
      peakRssMB: process.resourceUsage().maxRSS / 1024,
      toPin: result.toPin.length,
      toUnpin: result.toUnpin.length,
      toPinSample: result.toPin.slice(0, 3),
    }),
  );
}

async function runChild(args: string[]): Promise<string> {
  const child = spawn(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), ...args],
    {
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on("exit", resolve);
    // A child that cannot start rejects, so the schemas are still dropped.
    child.on("error", reject);
  });
  if (code !== 0) throw new Error(`${args[1]} child exited with ${code}`);
  return output.trim().split("\n").pop() ?? "";
}

async function main(): Promise<void> {
  if (argument("phase", "") === "diff") return diffPhase();
  if (argument("phase", "") === "fold") return foldPhase();
  const n = count("cids", 10_000);
  const rounds = count("rounds", 50);
  const differences = Math.max(1, Math.min(2_000, Math.floor(n / 5)));
  const indexer = await createTestSchema("bench_idx");
  const reconciler = await createTestSchema("bench_rec");
  const dir = await mkdtemp(join(tmpdir(), "quasar-bench-reconcile-"));
  const db = connect();
  const cleanup = async () => {
    await db.destroy();
    // --keep: leave the schemas for inspection (EXPLAIN), and say where they are.
    if (process.argv.includes("--keep"))
      return log("kept", { indexer: indexer.schema, reconciler: reconciler.schema });
    await indexer.drop();
    await reconciler.drop();
    await rm(dir, { recursive: true, force: true });
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      void cleanup().finally(() => process.exit(130));
    });
  }
  try {
    await createIndexerTables(db, indexer.schema);
    await migrateToLatest(db, reconciler.schema);
    const store = createDesiredStore({
      db,
      indexerSchema: indexer.schema,
      reconcilerSchema: reconciler.schema,
      ttlMs: TTL_MS,
      // --verbose: the store's per-step debug lines (phases in ms) on stderr.
      ...(process.argv.includes("--verbose")
        ? { logger: pino({ level: "debug" }, pino.destination(2)) }
        : {}),
    });

    // The history and the backend listing (every desired CID but `differences` of them, plus
    // as many foreign pins), made one batch at a time.
    const started = performance.now();
    const listingPath = join(dir, "listing.txt");
    const out = createWriteStream(listingPath);
    const write = async (line: string) => {
      if (!out.write(line))
        await new Promise<void>((resolve) => out.once("drain", () => resolve()));
    };
    const stride = Math.floor(n / differences);
    await insertEvents(db, indexer.schema, [register(CONTRACT_A, { block: 1n })]);
    for (let from = 0; from < n; from += INSERT_BATCH) {
      const batch = Array.from({ length: Math.min(INSERT_BATCH, n - from) }, (_, offset) =>
        benchCid(from + offset),
      );
      await insertPins(db, indexer.schema, batch, from);
      let lines = "";
      batch.forEach((cid, offset) => {
        const i = from + offset;
        if (!(i % stride === 0 && i / stride < differences)) lines += `${cid}\n`;
      });
      await write(lines);
      if (from % 1_000_000 === 0 && from > 0) log("history so far", { cids: from });
    }
    for (let i = 0; i < differences; i++) await write(`${benchCid(n + i)}\n`);
    await new Promise<void>((resolve) => out.end(() => resolve()));
    const lastBlock = 2n + BigInt(Math.floor((n - 1) / PINS_PER_BLOCK));
    await setProgress(db, indexer.schema, 1, { indexed: lastBlock, finalized: lastBlock });
    await sql`analyze ${sql.id(indexer.schema, "event")}`.execute(db);
    const setupSeconds = (performance.now() - started) / 1000;
    log("history inserted", { cids: n, blocks: Number(lastBlock), seconds: setupSeconds });

    // (a) The first fold, in a child of its own (its peak RSS is the fold's).
    const now = new Date(Number(blockTime(lastBlock + 100n)) * 1000);
    const schemas = ["--indexer-schema", indexer.schema, "--reconciler-schema", reconciler.schema];
    const fold = JSON.parse(
      await runChild(["--phase", "fold", ...schemas, "--now", String(now.getTime())]),
    ) as { seconds: number; peakRssMB: number; desired: number };
    log("first fold", fold);
    if (fold.desired !== n) throw new Error(`expected ${n} desired CIDs, got ${fold.desired}`);
    await sql`analyze ${sql.id(reconciler.schema, "desired_cid")}`.execute(db);
    await sql`analyze ${sql.id(reconciler.schema, "pin_ref")}`.execute(db);

    const diff = JSON.parse(
      await runChild(["--phase", "diff", ...schemas, "--listing", listingPath]),
    ) as { seconds: number; peakRssMB: number; toPin: number; toUnpin: number };
    log("full diff", diff);
    if (diff.toPin !== differences || diff.toUnpin !== differences) {
      throw new Error(`diff found ${diff.toPin}/${diff.toUnpin}, expected ${differences} each way`);
    }

    // (b) One new event on top of the history, then one step; pending, then folded once final.
    const timings: number[] = [];
    const floor: number[] = [];
    let clock = now.getTime();
    for (let round = 1; round <= rounds; round++) {
      const block = lastBlock + BigInt(round);
      const i = n + differences + round;
      await insertEvents(db, indexer.schema, [
        {
          id: eventId(1, block, 0),
          chainId: 1,
          blockNumber: block,
          blockHash: `0x${"cd".repeat(32)}`,
          blockTimestamp: blockTime(block),
          transactionHash: `0x${i.toString(16).padStart(64, "0")}`,
          logIndex: 0,
          contract: CONTRACT_A,
          kind: "pin_hash",
          subject: null,
          rawCid: benchCid(i),
          cid: benchCid(i),
          invalidReason: null,
        },
      ]);
      for (const finalized of [block - 1n, block]) {
        await setProgress(db, indexer.schema, 1, { indexed: block, finalized });
        clock += 1000;
        const t = performance.now();
        const changes = await store.step({ now: new Date(clock) });
        timings.push(performance.now() - t);
        if (changes.length !== 1) throw new Error(`expected one change, got ${changes.length}`);
        const f = performance.now();
        await db.transaction().execute(async (trx) => {
          for (let k = 2; k < STEP_STATEMENTS; k++) await sql`select ${k}::int as k`.execute(trx);
        });
        floor.push(performance.now() - f);
      }
    }
    const [median, p99] = [percentile(timings, 50), percentile(timings, 99)];
    const [floorMedian, floorP99] = [percentile(floor, 50), percentile(floor, 99)];
    log("incremental steps", {
      slowestMs: timings
        .toSorted((a, b) => a - b)
        .slice(-5)
        .map((t) => Math.round(t * 10) / 10),
    });
    const round = (value: number, digits: number) =>
      Math.round(value * 10 ** digits) / 10 ** digits;

    console.log(
      JSON.stringify({
        bench: "reconcile",
        cids: n,
        setupSeconds: round(setupSeconds, 1),
        firstFoldSeconds: round(fold.seconds, 1),
        firstFoldPeakRssMB: Math.round(fold.peakRssMB),
        fullDiffSeconds: round(diff.seconds, 3),
        peakRssMB: Math.round(diff.peakRssMB),
        incrementalStepMs: round(median, 1),
        incrementalStepP99Ms: round(p99, 1),
        roundTripsMs: round(floorMedian, 1),
        roundTripsP99Ms: round(floorP99, 1),
        steps: timings.length,
      }),
    );
  } finally {
    await cleanup();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
