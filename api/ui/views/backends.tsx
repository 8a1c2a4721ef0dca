import type { RecentError } from "@/db/ledger/activity.js";
import { formatDuration, formatTime } from "../format.js";
import type { StatusReport } from "../source.js";

/**
 * Backends: each backend's health as the reconciler last reported it, its counts and recent
 * errors, and how many desired CIDs have fewer copies than QUASAR_MIN_REPLICAS asks for.
 */
export function BackendsView(props: {
  report: StatusReport;
  errors: readonly RecentError[];
  replication: { required: number; short: number };
}) {
  const { report, replication } = props;
  const health = new Map((report.backendHealth ?? []).map((line) => [line.backendId, line]));
  return (
    <>
      <h1>Backends</h1>
      <section>
        <h2>Replication</h2>
        <div class="tiles">
          <div class="tile">
            <b data-stat="replication.required">{replication.required}</b>
            <span>copies required (QUASAR_MIN_REPLICAS)</span>
          </div>
          <div class={replication.short > 0 ? "tile warn" : "tile"}>
            <b data-stat="replication.short">{replication.short}</b>
            <span>desired CIDs with fewer copies</span>
          </div>
        </div>
      </section>
      {report.backends.map((backend) => {
        const line = health.get(backend.backendId);
        const errors = props.errors.filter((error) => error.backendId === backend.backendId);
        const state = line?.state ?? "unknown";
        return (
          <section class="card" data-backend={backend.backendId}>
            <h2 class="label">{backend.label}</h2>
            <p>
              <span
                class={`state ${state === "up" ? "ok" : state === "down" ? "bad" : ""}`}
                data-field="health"
              >
                {state}
              </span>{" "}
              {line
                ? state === "unknown"
                  ? `the reconciler last reported ${formatDuration(line.reportedSecondsAgo)} ago`
                  : `for ${formatDuration(line.forSeconds)}`
                : "the reconciler has not reported this backend"}
              {line?.lastError ? <span class="error-text"> · {line.lastError}</span> : null}
            </p>
            <p class="counts">
              <span>
                <strong data-stat={`backend.${backend.backendId}.pinned`}>{backend.pinned}</strong>{" "}
                pinned
              </span>
              <span>
                <strong data-stat={`backend.${backend.backendId}.pinning`}>
                  {backend.pinning}
                </strong>{" "}
                pinning
              </span>
              <span>
                <strong data-stat={`backend.${backend.backendId}.queued`}>{backend.queued}</strong>{" "}
                queued
              </span>
              <span>
                <strong data-stat={`backend.${backend.backendId}.failed`}>{backend.failed}</strong>{" "}
                failed
              </span>
            </p>
            {errors.length === 0 ? (
              <p class="muted">No failed command in the last 7 days.</p>
            ) : (
              <table class="log">
                <thead>
                  <tr>
                    <th>At</th>
                    <th>Decision</th>
                    <th>CID</th>
                    <th>Error</th>
                  </tr>
                </thead>
                <tbody>
                  {errors.map((error) => (
                    <tr>
                      <td class="nowrap">{formatTime(error.at)}</td>
                      <td>{error.decision}</td>
                      <td class="mono">
                        <a href={`/ui/pin?cid=${encodeURIComponent(error.cid)}`}>{error.cid}</a>
                      </td>
                      <td class="error-text">{error.error}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
        );
      })}
    </>
  );
}
