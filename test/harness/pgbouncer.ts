/**
 * A real PgBouncer in `transaction` pool mode in front of the test PostgreSQL (Debian's
 * pgbouncer, installed by scripts/pgbouncer.sh; QUASAR_PGBOUNCER_BIN may name another), on a
 * free loopback port. It produces on demand what no other part does: a connection that takes
 * LISTEN and never hears a NOTIFY.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import getPort from "get-port";
import pg from "pg";
import { TEST_DATABASE_URL } from "./postgres.js";
import { until } from "./until.js";

export type PgBouncer = {
  /** TEST_DATABASE_URL's database and user, through the bouncer. */
  databaseUrl: string;
  stop(): Promise<void>;
};

export async function startPgBouncer(): Promise<PgBouncer> {
  const binary = process.env.QUASAR_PGBOUNCER_BIN ?? "/usr/sbin/pgbouncer";
  const server = new URL(TEST_DATABASE_URL);
  const user = decodeURIComponent(server.username || "postgres");
  const database = server.pathname.slice(1) || user;
  const port = await getPort({ host: "127.0.0.1" });
  const dir = await mkdtemp(join(tmpdir(), "quasar-pgbouncer-"));
  // PgBouncer refuses to run as root; as root it is started as postgres, who must read this.
  await chmod(dir, 0o755);
  const password = server.password ? ` password=${decodeURIComponent(server.password)}` : "";
  const ini = [
    "[databases]",
    `* = host=${server.hostname} port=${server.port || "5432"} user=${user}${password}`,
    "[pgbouncer]",
    "listen_addr = 127.0.0.1",
    `listen_port = ${port}`,
    "auth_type = any",
    "pool_mode = transaction",
    "unix_socket_dir =",
    "logfile =",
    "pidfile =",
  ].join("\n");
  await writeFile(join(dir, "pgbouncer.ini"), `${ini}\n`, { mode: 0o644 });
  const asRoot = process.getuid?.() === 0;
  const child: ChildProcess = spawn(
    binary,
    [...(asRoot ? ["-u", "postgres"] : []), join(dir, "pgbouncer.ini")],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let output = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4_000);
  });
  const exited = once(child, "exit");
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  const databaseUrl = `postgresql://${encodeURIComponent(user)}@127.0.0.1:${port}/${database}`;
  let lastError: unknown;
  const accepts = async () => {
    if (child.exitCode !== null) throw new Error(`exited with code ${child.exitCode}`);
    const client = new pg.Client({ connectionString: databaseUrl });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("select 1");
      return true;
    } catch (error) {
      lastError = error;
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  };
  try {
    await until(accepts, 10_000, 100);
  } catch (error) {
    await stop();
    const cause = child.exitCode !== null || lastError === undefined ? error : lastError;
    throw new Error(`PgBouncer did not start (${String(cause)}):\n${output}`);
  }
  return { databaseUrl, stop };
}
