import type { DesiredReason } from "@/core/desired/reasons.js";
import type { BackendPinState, ReconcileLogEntry } from "@/db/ledger/reads.js";
import { formatTime } from "../format.js";

/** What the pin view found for one CID; `error` when the input is not a CID. */
export type PinLookup =
  | { kind: "empty" }
  | { kind: "invalid"; input: string; error: string }
  | {
      kind: "found";
      input: string;
      cid: string;
      reasons: DesiredReason[];
      backends: BackendPinState[];
      log: ReconcileLogEntry[];
    };

export function PinSearch(props: { input: string }) {
  return (
    <form method="get" action="/ui/pin" class="search">
      <label>
        CID, in any spelling (Qm…, bafy…, base36 k…, base58 z…)
        <input
          type="search"
          name="cid"
          value={props.input}
          placeholder="bafy… or Qm…"
          spellcheck={false}
          autocomplete="off"
        />
      </label>
      <button type="submit">Look up</button>
    </form>
  );
}

function ReasonRow(props: { reason: DesiredReason }) {
  const { reason } = props;
  if (reason.kind === "optimistic") {
    return (
      <tr>
        <td>optimistic (upload)</td>
        <td colspan={4}>-</td>
        <td>expires {formatTime(reason.expiresAt)}</td>
      </tr>
    );
  }
  if (reason.kind === "psa") {
    return (
      <tr>
        <td>psa (Pinning Service API)</td>
        <td colspan={4}>-</td>
        <td>{reason.requests} live requests; kept until deleted</td>
      </tr>
    );
  }
  const detail =
    reason.kind === "pending"
      ? `${reason.confirmationsLeft} blocks until final`
      : reason.kind === "demoted"
        ? `contract unregistered (${reason.unregisterSource}) ${formatTime(reason.unregisteredAt)}; kept until ${formatTime(reason.until)}`
        : "final";
  return (
    <tr>
      <td>{reason.kind}</td>
      <td>{reason.chainId}</td>
      <td class="mono">{reason.contract}</td>
      <td class="mono">{reason.transactionHash}</td>
      <td class="num">{reason.blockNumber.toString()}</td>
      <td>{detail}</td>
    </tr>
  );
}

/** Pin: every reason, each backend's status, attempts and last error, and the reconcile log. */
export function PinView(props: { lookup: PinLookup; labels: ReadonlyMap<string, string> }) {
  const { lookup, labels } = props;
  const label = (id: string) => labels.get(id) ?? id;
  if (lookup.kind === "empty") return <p>Enter a CID to see why it is pinned and where.</p>;
  if (lookup.kind === "invalid") return <p class="error">Not a CID: {lookup.error}</p>;
  return (
    <>
      <h2 class="mono cid" data-cid={lookup.cid}>
        {lookup.cid}
      </h2>
      {lookup.input !== lookup.cid ? <p class="muted">Looked up as {lookup.input}</p> : null}
      <p>
        {lookup.reasons.length > 0 ? (
          <span class="state ok" data-stat="pin.desired">
            desired
          </span>
        ) : (
          <span class="state" data-stat="pin.desired">
            not desired
          </span>
        )}
      </p>
      <section>
        <h3>Reasons</h3>
        {lookup.reasons.length === 0 ? (
          <p class="muted">No reason holds: Quasar does not want this CID pinned.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Reason</th>
                <th>Chain</th>
                <th>Contract</th>
                <th>Transaction</th>
                <th class="num">Block</th>
                <th>Expiry / state</th>
              </tr>
            </thead>
            <tbody>
              {lookup.reasons.map((reason) => (
                <ReasonRow reason={reason} />
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section>
        <h3>Backends</h3>
        {lookup.backends.length === 0 ? (
          <p class="muted">No backend has a ledger row for this CID.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Backend</th>
                <th>Status</th>
                <th class="num">Attempts</th>
                <th>Last error</th>
                <th>Updated</th>
              </tr>
            </thead>
            <tbody>
              {lookup.backends.map((state) => (
                <tr data-backend={state.backendId}>
                  <td class="label">{label(state.backendId)}</td>
                  <td>
                    <span class={`state ${statusClass(state.status)}`} data-field="status">
                      {state.status}
                    </span>
                  </td>
                  <td class="num" data-field="attempts">
                    {state.attempts}
                  </td>
                  <td class="error-text" data-field="lastError">
                    {state.lastError ?? ""}
                  </td>
                  <td>{formatTime(state.updatedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section>
        <h3>Reconcile log</h3>
        {lookup.log.length === 0 ? (
          <p class="muted">No decision recorded for this CID.</p>
        ) : (
          <table class="log">
            <thead>
              <tr>
                <th>At</th>
                <th>Backend</th>
                <th>Decision</th>
                <th>Reason</th>
                <th>Outcome</th>
                <th>Error</th>
              </tr>
            </thead>
            <tbody>
              {lookup.log.map((entry) => (
                <tr>
                  <td class="nowrap">{formatTime(entry.at)}</td>
                  <td class="label">{label(entry.backendId)}</td>
                  <td>{entry.decision}</td>
                  <td>{entry.reason}</td>
                  <td>
                    <span
                      class={`state ${entry.outcome === "error" ? "bad" : entry.outcome === "ok" ? "ok" : ""}`}
                    >
                      {entry.outcome}
                    </span>
                  </td>
                  <td class="error-text">{entry.error ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </>
  );
}

/** The colour class of a ledger status. */
export function statusClass(status: string): string {
  if (status === "pinned") return "ok";
  if (status === "failed") return "bad";
  if (status === "queued" || status === "pinning") return "warn";
  return "";
}
