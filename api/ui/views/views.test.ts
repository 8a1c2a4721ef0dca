import { describe, expect, it } from "vitest";
import type { StatusReport } from "../source.js";
import { PinRateChart } from "./chart.js";
import { Overview } from "./overview.js";
import { StuckView } from "./stuck.js";

/** Text from backends and chains reaches the page escaped, whatever it holds. */
describe("dashboard views", () => {
  const hostile = `<script>alert("x")</script>`;

  it("escapes errors, labels and ids", () => {
    const report: StatusReport = {
      chains: [
        {
          chainId: 1,
          rpc: "http://rpc",
          head: 10n,
          indexedBlock: 8n,
          finalizedBlock: 5n,
          lagBlocks: 2,
          behind: false,
          error: hostile,
        },
      ],
      desired: { desired: 3, confirmed: 1, pending: 1, optimistic: 1, demoted: 0, psa: 0 },
      backends: [
        {
          backendId: `b"1`,
          label: hostile,
          pinned: 1,
          pinning: 0,
          queued: 2,
          failed: 0,
          lagSeconds: 65,
        },
      ],
      backendHealth: null,
      problems: [hostile],
    };
    const html = String(Overview({ report, pinRate: [] }));
    expect(html).not.toContain("<script>");
    expect(html).toContain("&lt;script&gt;");
    expect(html).toContain('data-stat="backend.b&quot;1.queued">2<');
    expect(html).toContain('data-stat="chain.1.lagBlocks">2<');
    expect(html).toContain('data-value="65">1m 5s<');

    const stuck = String(
      StuckView({
        stuck: {
          total: 1,
          pins: [
            {
              backendId: "b1",
              cid: "bafkqaaa",
              status: "failed",
              attempts: 3,
              lastError: hostile,
              firstQueuedAt: new Date(0),
              ageSeconds: 90,
              nextAttemptAt: new Date(0),
            },
          ],
        },
        thresholdMs: 600_000,
        labels: new Map(),
        visitor: { admin: true, csrf: "t0ken", signInEnabled: true, views: [] },
      }),
    );
    expect(stuck).not.toContain("<script>");
    expect(stuck).toContain('name="csrf" value="t0ken"');
    expect(stuck).toContain("Retry now");
  });

  it("draws one bar per minute, scaled to the busiest", () => {
    const minutes = Array.from({ length: 60 }, (_, i) => ({
      minute: new Date(i * 60_000),
      pins: i === 59 ? 8 : i === 0 ? 4 : 0,
    }));
    const svg = String(PinRateChart({ minutes }));
    expect(svg.match(/<rect/g)).toHaveLength(60);
    expect(svg).toContain('data-stat="pins.lastHour">12<');
    expect(svg).toContain("8/min");
    const heights = [...svg.matchAll(/height="([\d.]+)"><title>/g)].map((m) => Number(m[1]));
    expect(heights[59]).toBeCloseTo(2 * (heights[0] as number), 0);
  });
});
