import { formatDuration, show } from "../format.js";
import type { StatusReport } from "../source.js";
import { PinRateChart } from "./chart.js";

/**
 * Overview: each chain's head / indexed / finalized with lag, desired CIDs by reason, each
 * backend's pinned / pinning / queued / failed and lag, and pins per minute. Every number
 * carries `data-stat` (the browser test compares them with `quasar status --json`).
 */
export function Overview(props: {
  report: StatusReport;
  pinRate: readonly { minute: Date; pins: number }[];
}) {
  const { report } = props;
  const health = new Map((report.backendHealth ?? []).map((line) => [line.backendId, line]));
  const desired = report.desired;
  return (
    <>
      <h1>Overview</h1>
      {report.problems.length > 0 ? (
        <ul class="problems">
          {report.problems.map((problem) => (
            <li>{problem}</li>
          ))}
        </ul>
      ) : null}
      <section>
        <h2>Chains</h2>
        <table>
          <thead>
            <tr>
              <th>Chain</th>
              <th class="num">Head</th>
              <th class="num">Indexed</th>
              <th class="num">Finalized</th>
              <th class="num">Lag (blocks)</th>
              <th>State</th>
            </tr>
          </thead>
          <tbody>
            {report.chains.map((chain) => (
              <tr>
                <td>{chain.chainId}</td>
                <td class="num" data-stat={`chain.${chain.chainId}.head`}>
                  {show(chain.head)}
                </td>
                <td class="num" data-stat={`chain.${chain.chainId}.indexedBlock`}>
                  {show(chain.indexedBlock)}
                </td>
                <td class="num" data-stat={`chain.${chain.chainId}.finalizedBlock`}>
                  {show(chain.finalizedBlock)}
                </td>
                <td class="num" data-stat={`chain.${chain.chainId}.lagBlocks`}>
                  {show(chain.lagBlocks)}
                </td>
                <td>
                  {chain.error ? (
                    <span class="state bad">{chain.error}</span>
                  ) : chain.behind ? (
                    <span class="state warn">behind</span>
                  ) : (
                    <span class="state ok">ok</span>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section>
        <h2>Desired CIDs</h2>
        {desired ? (
          <div class="tiles">
            {(["desired", "confirmed", "pending", "optimistic", "demoted", "psa"] as const).map(
              (key) => (
                <div class={key === "desired" ? "tile main" : "tile"}>
                  <b data-stat={`desired.${key}`}>{desired[key]}</b>
                  <span>{key === "desired" ? "desired in all" : key}</span>
                </div>
              ),
            )}
          </div>
        ) : (
          <p class="error">The desired set could not be read.</p>
        )}
      </section>
      <section>
        <h2>Backends</h2>
        <table>
          <thead>
            <tr>
              <th>Backend</th>
              <th>Health</th>
              <th class="num">Pinned</th>
              <th class="num">Pinning</th>
              <th class="num">Queued</th>
              <th class="num">Failed</th>
              <th class="num">Lag</th>
            </tr>
          </thead>
          <tbody>
            {report.backends.map((backend) => {
              const state = health.get(backend.backendId)?.state ?? "unknown";
              const stat = (key: string) => `backend.${backend.backendId}.${key}`;
              return (
                <tr>
                  <td class="label">{backend.label}</td>
                  <td>
                    <span class={`state ${state === "up" ? "ok" : state === "down" ? "bad" : ""}`}>
                      {state}
                    </span>
                  </td>
                  <td class="num" data-stat={stat("pinned")}>
                    {backend.pinned}
                  </td>
                  <td class="num" data-stat={stat("pinning")}>
                    {backend.pinning}
                  </td>
                  <td class="num" data-stat={stat("queued")}>
                    {backend.queued}
                  </td>
                  <td class={backend.failed > 0 ? "num bad" : "num"} data-stat={stat("failed")}>
                    {backend.failed}
                  </td>
                  <td class="num" data-stat={stat("lagSeconds")} data-value={backend.lagSeconds}>
                    {formatDuration(backend.lagSeconds)}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
      <section>
        <h2>Activity</h2>
        <PinRateChart minutes={props.pinRate} />
      </section>
    </>
  );
}
