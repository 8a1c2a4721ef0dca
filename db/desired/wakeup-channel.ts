/**
 * The PostgreSQL channel on which queued desired-step work is announced (migration 0008), with
 * the reconciler schema's name as payload: one channel for every schema, as a channel name is
 * limited to 63 bytes and a schema name may use them all.
 */
export const DESIRED_WAKEUP_CHANNEL = "quasar_desired_work";
