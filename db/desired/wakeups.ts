import { randomUUID } from "node:crypto";
import pg from "pg";
import type { Logger } from "pino";
import { describeError } from "@/core/errors.js";
import { NotificationsUndeliveredError } from "../errors.js";
import {
  announcesChainEvents,
  DESIRED_WAKEUP_CHANNEL,
  indexerLiveChannel,
} from "./wakeup-channel.js";

/**
 * Listens, on a connection of its own, for desired-step work queued in one reconciler schema
 * (migration 0008) and, given the indexer's schema, for blocks the indexer commits live with
 * chain events in them; calls `onWake` for each announcement. A lost connection is reopened
 * with backoff; while it is down the reconciler steps on its interval as before, so a wake-up
 * is only ever early, never needed.
 *
 * LISTEN can succeed on a connection that will never hear anything: behind a transaction-
 * pooling proxy the listening server session goes back to the pool after the statement. So
 * the listener counts as listening only once a probe notification, sent from a connection of
 * its own, has come back, and it probes again every few minutes.
 */
export type DesiredWakeups = {
  /** Whether the connection is open and listening. */
  listening(): boolean;
  close(): Promise<void>;
};

/** How long a probe notification may take to come back. */
const PROBE_TIMEOUT_MS = 3_000;
/** How often a listening connection is probed again. */
const PROBE_EVERY_MS = 5 * 60_000;
const RETRY_FIRST_MS = 500;
const RETRY_MAX_MS = 30_000;
/** Shown in pg_stat_activity. */
export const WAKEUPS_APPLICATION_NAME = "quasar-reconciler-wakeups";

export function listenForDesiredWork(params: {
  databaseUrl: string;
  reconcilerSchema: string;
  /** The indexer's schema: wake when Ponder commits a live block that wrote chain events. */
  indexerSchema?: string;
  onWake: () => void;
  /** Told each time the listener starts or stops listening. */
  onListening?: (listening: boolean) => void;
  logger: Logger;
  /** How long a probe may take to come back; default 3 s. */
  probeTimeoutMs?: number;
  /** How often a listening connection is probed again; default 5 min. */
  probeEveryMs?: number;
}): DesiredWakeups {
  const { logger } = params;
  let client: pg.Client | undefined;
  let listening = false;
  const setListening = (value: boolean) => {
    if (value !== listening) params.onListening?.(value);
    listening = value;
  };
  let closed = false;
  let retryMs = RETRY_FIRST_MS;
  let retryTimer: NodeJS.Timeout | undefined;
  let warned = false;
  let probeTimer: NodeJS.Timeout | undefined;
  let pendingProbe: { token: string; heard: () => void } | undefined;

  const scheduleRetry = () => {
    if (closed || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void open();
    }, retryMs);
    retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
  };

  /** Drops the current connection (nothing it still says counts); resolves once it has ended. */
  const discard = () => {
    const had = client;
    client = undefined;
    setListening(false);
    clearInterval(probeTimer);
    had?.removeAllListeners();
    had?.on("error", () => {});
    return had?.end().catch(() => {});
  };

  const lost = (error: unknown) => {
    void discard();
    if (closed) return;
    if (!warned) {
      warned = true;
      logger.warn({
        msg: "not listening for queued work: steps wait for the reconcile interval until it listens again",
        err: describeError(error),
      });
    }
    scheduleRetry();
  };

  /** Sends a notification from another connection; resolves once the listener has heard it. */
  async function probe(): Promise<void> {
    const token = `probe:${randomUUID()}`;
    const heard = new Promise<void>((resolve) => {
      pendingProbe = { token, heard: resolve };
    });
    const timeoutMs = params.probeTimeoutMs ?? PROBE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    try {
      const sender = new pg.Client({
        connectionString: params.databaseUrl,
        application_name: `${WAKEUPS_APPLICATION_NAME}-probe`,
      });
      sender.on("error", () => {});
      try {
        await sender.connect();
        await sender.query("select pg_notify($1, $2)", [DESIRED_WAKEUP_CHANNEL, token]);
      } finally {
        await sender.end().catch(() => {});
      }
      const arrived = await Promise.race([
        heard.then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), timeoutMs);
        }),
      ]);
      if (!arrived) throw new NotificationsUndeliveredError(timeoutMs);
    } finally {
      clearTimeout(timer);
      if (pendingProbe?.token === token) pendingProbe = undefined;
    }
  }

  async function open(): Promise<void> {
    const next = new pg.Client({
      connectionString: params.databaseUrl,
      application_name: WAKEUPS_APPLICATION_NAME,
      // An idle listener sends nothing: without keep-alive, a server that vanished without
      // closing the connection would leave it silent (no error to reopen on) for good.
      keepAlive: true,
      keepAliveInitialDelayMillis: 30_000,
    });
    client = next;
    next.on("error", lost);
    next.on("end", () => {
      if (client === next) lost(new Error("the connection ended"));
    });
    const liveChannel =
      params.indexerSchema === undefined ? undefined : indexerLiveChannel(params.indexerSchema);
    next.on("notification", (message) => {
      const probing = pendingProbe;
      if (
        probing !== undefined &&
        message.channel === DESIRED_WAKEUP_CHANNEL &&
        message.payload === probing.token
      ) {
        probing.heard();
        return;
      }
      const queued =
        message.channel === DESIRED_WAKEUP_CHANNEL && message.payload === params.reconcilerSchema;
      // A live block with no chain events only moves Ponder's checkpoint: the interval's step
      // takes finality as it comes, so such blocks wake nobody.
      const indexed = message.channel === liveChannel && announcesChainEvents(message.payload);
      if (queued || indexed) params.onWake();
    });
    try {
      await next.connect();
      await next.query(`listen ${DESIRED_WAKEUP_CHANNEL}`);
      if (liveChannel !== undefined)
        await next.query(`listen ${next.escapeIdentifier(liveChannel)}`);
      await probe();
      if (closed || client !== next) {
        await next.end().catch(() => {});
        return;
      }
      setListening(true);
      probeTimer = setInterval(() => {
        if (client !== next) return;
        probe().catch((error: unknown) => {
          if (client === next) lost(error);
        });
      }, params.probeEveryMs ?? PROBE_EVERY_MS);
      probeTimer.unref();
      retryMs = RETRY_FIRST_MS;
      if (warned) logger.info({ msg: "listening for queued work again" });
      warned = false;
      // Work queued while the connection was down was announced to nobody.
      params.onWake();
    } catch (error) {
      if (client === next) lost(error);
    }
  }

  void open();
  return {
    listening: () => listening,
    async close() {
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await discard();
    },
  };
}
