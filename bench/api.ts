/**
 * `npm run bench:api [-- --uploads N --concurrency C --big-bytes B --backend kubo|helia
 *   --exclusive --direct http|client]` (--exclusive: the Kubo daemon is declared Quasar's
 *   alone, `?exclusive=true`)
 *
 * 1. Small uploads: C concurrent clients upload N files of 1 KiB through the API (fetch +
 *    FormData, field `entry`, as the Aragon client does), and N other 1 KiB files go
 *    straight to the same backend with the same concurrency, alternating in `--rounds`
 *    rounds (the node slows as it fills, so neither side always gets the fuller node).
 *    Fresh bytes for each side, so neither re-adds content the other stored.
 *    The direct side (`--direct`): `http` (default) posts to Kubo's `add` with the same
 *    client code as the API side (fetch + FormData, pinned under Quasar's name), so both
 *    sides pay the same client cost on the shared core; `client` goes through Quasar's own
 *    ContentBackend client (addFile), a much cheaper client than fetch. helia is always
 *    `client`.
 *    With `--backend kubo` (default) both sides talk to one Kubo daemon, alone on core 1
 *    (`taskset`), while the API child, this process (the clients and the direct side) and the
 *    API's PostgreSQL backends are moved to core 0 (`isolated` says whether that worked); with
 *    `--backend helia` the API embeds its own helia node, and the direct side uses another
 *    helia node of the same kind in this process (helia's stores cannot be shared live).
 * 2. One upload of B bytes (default 1 GiB) through the API, generated on the fly by the
 *    client. The API runs as a child process; its peak RSS is reset just before (Linux
 *    /proc/<pid>/clear_refs) and read after (VmHWM), so the figure is what that upload added
 *    to the server's peak memory over its resident size before it.
 *
 * CPU per small upload is read from /proc for each side: Quasar's (the API process and its
 * PostgreSQL backends), the clients' (this process, on Quasar's core) and Kubo's.
 *
 * Last line:
 * {"bench":"api","backend":"kubo","backendVersion":V,"isolated":I,"uploads":N,
 *  "exclusive":E,"direct":"http"|"client","apiPerSec":A,
 *  "directPerSec":B,"ratio":A/B,"p99Ms":P,"directP99Ms":Q,"bigUploadPeakRssMB":M,
 *  "cpuMsPerUpload":{"api":{"quasar":…,"client":…,"kubo":…},"direct":{"client":…,"kubo":…}}}
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  type ContentBackend,
  parseBackends,
  QUASAR_PIN_NAME,
  requireContent,
} from "@/backends/index.js";
import { connectDatabase } from "@/db/connect.js";
import { type KuboDaemon, startKubo } from "@/test/harness/kubo.js";
import { createTestSchema, type TestSchema } from "@/test/harness/postgres.js";
import { pinToCores } from "./cores.js";
import { percentile } from "./percentile.js";
import { cpuMeter, postgresBackendPids, processCpuSeconds } from "./proc-cpu.js";

const { values } = parseArgs({
  options: {
    uploads: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "16" },
    "big-bytes": { type: "string", default: String(1024 * 1024 * 1024) },
    backend: { type: "string", default: "kubo" },
    rounds: { type: "string", default: "4" },
    exclusive: { type: "boolean", default: false },
    direct: { type: "string", default: "http" },
  },
});
const N = positive("uploads", values.uploads);
const C = positive("concurrency", values.concurrency);
const BIG = Number(values["big-bytes"]);
if (!Number.isSafeInteger(BIG) || BIG < 0)
  throw new Error(`--big-bytes must be ≥ 0, got ${values["big-bytes"]}`);
if (values.backend !== "kubo" && values.backend !== "helia") {
  throw new Error(`--backend must be kubo or helia, got ${values.backend}`);
}
const ROUNDS = positive("rounds", values.rounds);
if (values.direct !== "http" && values.direct !== "client") {
  throw new Error(`--direct must be http or client, got ${values.direct}`);
}
// helia runs in this process: it has no HTTP endpoint to post to.
const DIRECT = values.backend === "helia" ? "client" : values.direct;
const FILE_BYTES = 1024;
const WARMUP = Math.min(50, N);

function positive(name: string, raw: string | undefined): number {
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new Error(`--${name} must be a positive integer, got ${raw}`);
  return value;
}

const log = (msg: string) => process.stderr.write(`${msg}\n`);

async function pool<T>(
  items: readonly T[],
  concurrency: number,
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await run(items[next++] as T);
    }),
  );
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

const files = (count: number) =>
  Array.from({ length: count }, () => new Uint8Array(randomBytes(FILE_BYTES)));

type ApiChild = { url: string; pid: number; process: ChildProcess; stop(): Promise<void> };

/** Runs api/main.ts in its own node process (so its memory is measurable alone). */
async function startApi(env: Record<string, string>): Promise<ApiChild> {
  const child = spawn(process.execPath, ["--import", "tsx", "api/main.ts"], {
    cwd: join(import.meta.dirname, ".."),
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the API did not start:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
      const match = /"url":"(http:\/\/[^"]+)"/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the API exited (${code}):\n${output}`));
    });
  });
  child.stdout?.resume();
  child.stderr?.resume();
  return {
    url,
    pid: child.pid ?? 0,
    process: child,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function memoryKB(pid: number): Promise<{ rss: number; hwm: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? Number.NaN);
  return { rss: field("VmRSS"), hwm: field("VmHWM") };
}

/**
 * One file as a multipart POST (fetch + FormData): the client code of both sides, so both
 * pay the same client cost on the shared core.
 */
async function postFile(url: string, field: string, bytes: Uint8Array, ok: number): Promise<void> {
  const form = new FormData();
  form.append(field, new Blob([bytes]), "file.bin");
  const response = await fetch(url, { method: "POST", body: form });
  const text = await response.text();
  if (response.status !== ok) throw new Error(`${url} answered ${response.status}: ${text}`);
}

/** An upload through the API, as the Aragon client makes it (field `entry`, 201). */
const uploadThroughApi = (url: string, bytes: Uint8Array) =>
  postFile(`${url}/api/v0/add`, "entry", bytes, 201);

/** The same upload straight to Kubo's `add`, pinned under Quasar's name. */
const uploadToKubo = (apiUrl: string, bytes: Uint8Array) =>
  postFile(
    `${apiUrl}/api/v0/add?pin=true&pin-name=${QUASAR_PIN_NAME}&progress=false`,
    "file",
    bytes,
    200,
  );

/** Streams a multipart upload of `size` bytes generated on the fly; resolves with the answer. */
function bigUpload(url: string, size: number): Promise<{ status: number; body: string }> {
  const target = new URL(`${url}/api/v0/add`);
  const boundary = `----bench${randomBytes(8).toString("hex")}`;
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: target.pathname,
        method: "POST",
        headers: {
          "content-type": `multipart/form-data; boundary=${boundary}`,
          "transfer-encoding": "chunked",
        },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.write(
      `--${boundary}\r\nContent-Disposition: form-data; name="entry"; filename="big.bin"\r\n\r\n`,
    );
    // Varying bytes so the DAG is not one repeated block.
    const chunk = Buffer.from(randomBytes(256 * 1024));
    let sent = 0;
    let counter = 0;
    const pump = () => {
      while (sent < size) {
        const length = Math.min(chunk.length, size - sent);
        chunk.writeUInt32LE(counter++, 0);
        sent += length;
        if (!req.write(Buffer.from(chunk.subarray(0, length)))) {
          req.once("drain", pump);
          return;
        }
      }
      req.end(`\r\n--${boundary}--\r\n`);
    };
    pump();
  });
}

async function main(): Promise<void> {
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const step of cleanups.reverse()) await step().catch(() => {});
  };
  process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));
  try {
    const schema: TestSchema = await createTestSchema("bench_api");
    cleanups.push(() => schema.drop());
    const dirs: string[] = [];
    cleanups.push(async () => {
      for (const dir of dirs) await rm(dir, { recursive: true, force: true });
    });

    let apiBackend: string;
    let direct: ContentBackend;
    let daemon: KuboDaemon | undefined;
    if (values.backend === "kubo") {
      log("starting the Kubo daemon…");
      daemon = await startKubo({ cpus: "1" });
      const started = daemon;
      cleanups.push(() => started.destroy());
      // --exclusive: the daemon declared Quasar's alone, so uploads skip the look for a
      // foreign pin (one daemon call fewer per upload).
      apiBackend = values.exclusive
        ? `${daemon.connectionString}?exclusive=true`
        : daemon.connectionString;
      direct = requireContent(parseBackends([daemon.connectionString])[0]!, "bench").content;
    } else {
      const apiDir = await mkdtemp(join(tmpdir(), "quasar-bench-api-"));
      const directDir = await mkdtemp(join(tmpdir(), "quasar-bench-direct-"));
      dirs.push(apiDir, directDir);
      apiBackend = `helia://${apiDir}?offline=true`;
      direct = requireContent(
        parseBackends([`helia://${directDir}?offline=true`])[0]!,
        "bench",
      ).content;
    }
    await direct.open();
    cleanups.push(() => direct.close());
    const kuboUrl = daemon?.apiUrl;
    const uploadDirect =
      DIRECT === "http" && kuboUrl
        ? (bytes: Uint8Array) => uploadToKubo(kuboUrl, bytes)
        : async (bytes: Uint8Array) => {
            await direct.addFile(once(bytes), { name: QUASAR_PIN_NAME });
          };

    log("starting the API…");
    const api = await startApi({
      DATABASE_URL: schema.databaseUrl,
      QUASAR_RECONCILER_SCHEMA: schema.schema,
      QUASAR_BACKENDS: apiBackend,
      QUASAR_API_PORT: "0",
      QUASAR_RATE_LIMIT: "0",
      // Every bench client is one address: the per-client cap must admit all of them.
      QUASAR_MAX_UPLOADS_PER_CLIENT: String(C),
      QUASAR_MAX_UPLOAD_BYTES: String(Math.max(BIG + 1024 * 1024, 1024 * 1024)),
      QUASAR_LOG_LEVEL: "info",
    });
    cleanups.push(() => api.stop());

    // Warm both paths (connections, JIT, first blocks) before timing.
    await pool(files(WARMUP), C, (bytes) => uploadThroughApi(api.url, bytes));
    await pool(files(WARMUP), C, uploadDirect);
    // Our side on core 0, the daemon alone on core 1; the API's PostgreSQL backends exist
    // now that it has served uploads.
    const admin = connectDatabase({ databaseUrl: schema.databaseUrl, maxConnections: 1 });
    cleanups.push(() => admin.destroy());
    const apiPgPids = () => postgresBackendPids(admin as never, api.pid);
    const isolated =
      daemon?.isolated === true &&
      (await pinToCores([process.pid, api.pid, ...(await apiPgPids())], "0"));
    const kuboCpu = () => (daemon ? (processCpuSeconds(daemon.pid() as number) ?? 0) : 0);
    const quasarCpu = { api: cpuMeter() };
    // This process is the clients of both sides: its CPU shares core 0 with Quasar's.
    const clientCpu = { api: cpuMeter(), direct: cpuMeter() };
    const kuboSeconds = { api: 0, direct: 0 };

    // The backend slows down as it fills up (more blocks, more pins), so whichever side ran
    // second would be measured on a fuller node. Alternate the two sides in rounds instead.
    log(
      `${N} uploads of ${FILE_BYTES} B each way (API with ${C} clients, direct with ${C} concurrent), ${ROUNDS} alternating rounds…`,
    );
    const latencies: number[] = [];
    const directLatencies: number[] = [];
    let apiSeconds = 0;
    let directSeconds = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const count = Math.floor(N / ROUNDS) + (round < N % ROUNDS ? 1 : 0);
      quasarCpu.api.sample([api.pid, ...(await apiPgPids())], true);
      clientCpu.api.sample([process.pid], true);
      let kuboBefore = kuboCpu();
      let started = performance.now();
      await pool(files(count), C, async (bytes) => {
        const t0 = performance.now();
        await uploadThroughApi(api.url, bytes);
        latencies.push(performance.now() - t0);
      });
      apiSeconds += (performance.now() - started) / 1000;
      kuboSeconds.api += kuboCpu() - kuboBefore;
      quasarCpu.api.sample([api.pid, ...(await apiPgPids())], false);
      clientCpu.api.sample([process.pid], false);
      clientCpu.direct.sample([process.pid], true);
      kuboBefore = kuboCpu();
      started = performance.now();
      await pool(files(count), C, async (bytes) => {
        const t0 = performance.now();
        await uploadDirect(bytes);
        directLatencies.push(performance.now() - t0);
      });
      directSeconds += (performance.now() - started) / 1000;
      kuboSeconds.direct += kuboCpu() - kuboBefore;
      clientCpu.direct.sample([process.pid], false);
    }
    // Where the API's upload time went, from its own metrics.
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    for (const phase of ["store", "look", "record", "pin", "confirm"]) {
      const sum = Number(
        new RegExp(`quasar_api_upload_phase_seconds_sum\\{phase="${phase}"\\} ([\\d.e+-]+)`).exec(
          metrics,
        )?.[1],
      );
      const count = Number(
        new RegExp(`quasar_api_upload_phase_seconds_count\\{phase="${phase}"\\} (\\d+)`).exec(
          metrics,
        )?.[1],
      );
      log(`API ${phase} phase: mean ${round((sum / count) * 1000, 2)} ms over ${count} uploads`);
    }

    let bigUploadPeakRssMB = 0;
    if (BIG > 0) {
      log(`one upload of ${BIG} B through the API…`);
      // Reset the child's peak RSS to its current RSS (Linux ≥ 4.0), so VmHWM afterwards is
      // the peak reached during this upload.
      await writeFile(`/proc/${api.pid}/clear_refs`, "5");
      const before = await memoryKB(api.pid);
      let sampledPeak = before.rss;
      const sampler = setInterval(() => {
        void memoryKB(api.pid).then(
          (m) => {
            sampledPeak = Math.max(sampledPeak, m.rss);
          },
          () => {},
        );
      }, 100);
      const t0 = performance.now();
      const answer = await bigUpload(api.url, BIG);
      const seconds = (performance.now() - t0) / 1000;
      clearInterval(sampler);
      if (answer.status !== 201)
        throw new Error(`big upload answered ${answer.status}: ${answer.body}`);
      const after = await memoryKB(api.pid);
      const peak = Math.max(after.hwm, sampledPeak);
      bigUploadPeakRssMB = round((peak - before.rss) / 1024, 1);
      log(
        `big upload: ${round(BIG / 1024 / 1024 / seconds, 1)} MiB/s, RSS before ${round(before.rss / 1024, 1)} MB, peak ${round(peak / 1024, 1)} MB, CID ${answer.body}`,
      );
    }

    const sorted = [...latencies].sort((a, b) => a - b);
    const apiPerSec = round(N / apiSeconds, 1);
    const directPerSec = round(N / directSeconds, 1);
    const msPer = (seconds: number) => round((seconds / N) * 1000, 3);
    const result = {
      bench: "api",
      backend: values.backend,
      backendVersion: daemon?.version ?? "helia",
      isolated,
      uploads: N,
      exclusive: values.exclusive,
      direct: DIRECT,
      apiPerSec,
      directPerSec,
      ratio: round(apiPerSec / directPerSec, 3),
      p99Ms: round(percentile(sorted, 99), 1),
      directP99Ms: round(percentile(directLatencies, 99), 1),
      bigUploadPeakRssMB,
      cpuMsPerUpload: {
        api: {
          quasar: msPer(quasarCpu.api.seconds()),
          client: msPer(clientCpu.api.seconds()),
          kubo: msPer(kuboSeconds.api),
        },
        direct: { client: msPer(clientCpu.direct.seconds()), kubo: msPer(kuboSeconds.direct) },
      },
    };
    log(`p50 ${round(percentile(sorted, 50), 1)} ms, backend ${values.backend}, concurrency ${C}`);
    await cleanup();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } catch (error) {
    await cleanup();
    throw error;
  }
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

await main();
