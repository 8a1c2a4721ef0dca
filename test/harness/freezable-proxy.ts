import type { AddressInfo } from "node:net";
import { connect, createServer, type Server, type Socket } from "node:net";

/**
 * A TCP proxy in the test process, between a Quasar process and the shared PostgreSQL, that
 * can stop forwarding. `kill -STOP` on the shared server would freeze every other suite; to
 * the process under test a proxy holding its bytes is the same fault (connections stay open,
 * nothing comes back), on real sockets.
 */
export type FreezableProxy = {
  port: number;
  /** Stop forwarding: a frozen server. */
  freeze(): void;
  thaw(): void;
  /** Drop every connection and refuse new ones until thawed: a server that is down. */
  cut(): void;
  /**
   * The next COMMIT reaches the server, but its answer never reaches the client: the
   * connection drops once the server has answered. The transaction is committed and its
   * client cannot know (a network cut or a restart at the worst moment). One-shot. With
   * `marker`, only the COMMIT of a transaction that sent `marker` (in a query or its
   * parameters, e.g. a CID) counts.
   */
  loseNextCommitAnswer(marker?: string): void;
  /**
   * The next new connection's session is ended (`terminate(pid)`, e.g. pg_terminate_backend)
   * the moment it is ready, and the client receives the server's greeting and its FATAL
   * answer as one chunk: what TCP delivers when a busy client reads late. pg then parses
   * "ready" and "terminated" in one go, before the code that asked for the connection has run
   * again. One-shot; resolves once that connection has been delivered.
   */
  terminateNextAtReady(terminate: (pid: number) => Promise<void>): Promise<void>;
  /**
   * Local ports of the open connections to the server: PostgreSQL's `client_port` of the
   * sessions that came through this proxy, so a test can end those sessions and no others.
   */
  upstreamPorts(): number[];
  close(): Promise<void>;
};

/** Forwards TCP to `target`; while frozen it holds every byte (both ways) and forwards nothing. */
export async function startProxy(target: { host: string; port: number }): Promise<FreezableProxy> {
  let frozen = false;
  let down = false;
  let loseCommitAnswer = false;
  let commitMarker: string | undefined;
  let terminateAtReady: { terminate: (pid: number) => Promise<void>; done: () => void } | undefined;
  const held: [Socket, Buffer][] = [];
  const sockets = new Set<Socket>();
  const upstreams = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = connect(target.port, target.host);
    upstreams.add(upstream);
    upstream.on("close", () => upstreams.delete(upstream));
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    }
    // Set when this connection's COMMIT went out and its answer is to be lost.
    let commitSent = false;
    // This connection's open transaction sent the marker.
    let markerSent = false;
    const forward = (from: Socket, to: Socket) => {
      from.on("data", (chunk: Buffer) => {
        if (from === upstream && commitSent) {
          // The server has processed the COMMIT: drop its answer and the connection.
          client.destroy();
          upstream.destroy();
          return;
        }
        if (from === client && loseCommitAnswer) {
          if (commitMarker !== undefined && chunk.includes(commitMarker)) markerSent = true;
          if (isSimpleCommit(chunk)) {
            if (commitMarker === undefined || markerSent) {
              loseCommitAnswer = false;
              commitSent = true;
            }
            markerSent = false;
          }
        }
        if (frozen) held.push([to, chunk]);
        else to.write(chunk);
      });
      from.on("error", () => to.destroy());
      from.on("close", () => to.destroy());
    };
    if (terminateAtReady) {
      const { terminate, done } = terminateAtReady;
      terminateAtReady = undefined;
      holdStartupUntilTerminated(client, upstream, terminate, done);
      return;
    }
    forward(client, upstream);
    forward(upstream, client);
  });
  server.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    freeze() {
      frozen = true;
    },
    cut() {
      down = true;
      for (const socket of sockets) socket.destroy();
    },
    loseNextCommitAnswer(marker?: string) {
      loseCommitAnswer = true;
      commitMarker = marker;
    },
    terminateNextAtReady(terminate) {
      return new Promise<void>((resolve) => {
        terminateAtReady = { terminate, done: resolve };
      });
    },
    upstreamPorts() {
      return [...upstreams].flatMap((socket) =>
        socket.localPort === undefined ? [] : [socket.localPort],
      );
    },
    thaw() {
      frozen = false;
      down = false;
      for (const [to, chunk] of held.splice(0)) if (!to.destroyed) to.write(chunk);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Forwards the session's start-up both ways (authentication included) up to the server's
 * ReadyForQuery; holds that message, ends the session by its pid (from BackendKeyData),
 * waits for the server to close, then hands the client ReadyForQuery and the FATAL at once.
 */
function holdStartupUntilTerminated(
  client: Socket,
  upstream: Socket,
  terminate: (pid: number) => Promise<void>,
  done: () => void,
): void {
  let pending = Buffer.alloc(0);
  let held: Buffer | undefined;
  let pid: number | undefined;
  client.on("data", (chunk: Buffer) => upstream.write(chunk));
  client.on("error", () => upstream.destroy());
  client.on("close", () => upstream.destroy());
  upstream.on("error", () => {});
  upstream.on("data", (chunk: Buffer) => {
    if (held) {
      held = Buffer.concat([held, chunk]);
      return;
    }
    pending = Buffer.concat([pending, chunk]);
    // Forward whole messages until ReadyForQuery (`Z`); remember BackendKeyData's (`K`) pid.
    let offset = 0;
    while (offset + 5 <= pending.length) {
      const type = pending[offset];
      const end = offset + 1 + pending.readInt32BE(offset + 1);
      if (end > pending.length) break;
      if (type === 0x4b) pid = pending.readInt32BE(offset + 5);
      if (type === 0x5a) {
        client.write(pending.subarray(0, offset));
        held = pending.subarray(offset);
        void terminate(pid ?? -1);
        return;
      }
      offset = end;
    }
    client.write(pending.subarray(0, offset));
    pending = pending.subarray(offset);
  });
  upstream.on("close", () => {
    if (held && !client.destroyed) client.end(held);
    done();
  });
}

/** A simple-protocol Query message (`Q`, length, text) whose text is COMMIT, as pg sends it. */
function isSimpleCommit(chunk: Buffer): boolean {
  if (chunk[0] !== 0x51 || chunk.length < 6) return false;
  const text = chunk.subarray(5, chunk.length - 1).toString("utf8");
  return text.trim().toLowerCase() === "commit";
}
