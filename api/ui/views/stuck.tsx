import type { RetryNowOutcome } from "@/db/ledger/retry-now.js";
import type { StuckPin } from "@/db/ledger/stuck.js";
import { formatDuration, formatTime } from "../format.js";
import type { UiVisitor } from "./layout.js";
import { statusClass } from "./pin.js";

const RETRIED: Record<RetryNowOutcome, string> = {
  requeued: "Queued again: the reconciler tries it on its next round.",
  in_flight: "A pin command is running for it; its outcome decides.",
  not_stuck: "It is no longer stuck: nothing to retry.",
  absent: "No such pin in the ledger.",
};

/**
 * Stuck: pins queued or pinning for longer than QUASAR_UI_STUCK_AFTER and every failed pin,
 * oldest first, with their last error; admins get a retry-now button per row.
 */
export function StuckView(props: {
  stuck: { pins: StuckPin[]; total: number };
  thresholdMs: number;
  labels: ReadonlyMap<string, string>;
  visitor: UiVisitor;
  retried?: RetryNowOutcome;
}) {
  const { stuck, visitor } = props;
  const label = (id: string) => props.labels.get(id) ?? id;
  return (
    <>
      <h1>Stuck pins</h1>
      <p class="muted">
        Queued or pinning for more than {formatDuration(props.thresholdMs / 1_000)}{" "}
        (QUASAR_UI_STUCK_AFTER), and every failed pin; oldest first.
      </p>
      {props.retried ? (
        <p class={props.retried === "requeued" ? "notice" : "error"} role="status">
          {RETRIED[props.retried]}
        </p>
      ) : null}
      <p>
        <b data-stat="stuck.total">{stuck.total}</b> stuck
        {stuck.total > stuck.pins.length ? ` (the oldest ${stuck.pins.length} shown)` : ""}
      </p>
      {stuck.pins.length === 0 ? (
        <p class="notice">Nothing is stuck.</p>
      ) : (
        <table class="stuck">
          <thead>
            <tr>
              <th class="num">Age</th>
              <th>Backend</th>
              <th>CID</th>
              <th>Status</th>
              <th class="num">Attempts</th>
              <th>Last error</th>
              <th>Next try</th>
              {visitor.admin ? <th /> : null}
            </tr>
          </thead>
          <tbody>
            {stuck.pins.map((pin) => (
              <tr data-cid={pin.cid} data-backend={pin.backendId}>
                <td class="num nowrap">{formatDuration(pin.ageSeconds)}</td>
                <td class="label">{label(pin.backendId)}</td>
                <td class="mono">
                  <a href={`/ui/pin?cid=${encodeURIComponent(pin.cid)}`}>{pin.cid}</a>
                </td>
                <td>
                  <span class={`state ${statusClass(pin.status)}`} data-field="status">
                    {pin.status}
                  </span>
                </td>
                <td class="num">{pin.attempts}</td>
                <td class="error-text" data-field="lastError">
                  {pin.lastError ?? ""}
                </td>
                <td class="nowrap">{formatTime(pin.nextAttemptAt)}</td>
                {visitor.admin ? (
                  <td>
                    {pin.status === "pinning" ? null : (
                      <form method="post" action="/ui/stuck/retry">
                        <input type="hidden" name="csrf" value={visitor.csrf} />
                        <input type="hidden" name="backend" value={pin.backendId} />
                        <input type="hidden" name="cid" value={pin.cid} />
                        <button type="submit" class="small">
                          Retry now
                        </button>
                      </form>
                    )}
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
