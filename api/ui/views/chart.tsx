/**
 * A bar chart of pins per minute, drawn on the server as inline SVG (no script, no library):
 * one bar per minute, the newest on the right, scaled to the busiest minute.
 */
export function PinRateChart(props: { minutes: readonly { minute: Date; pins: number }[] }) {
  const { minutes } = props;
  const width = 720;
  const height = 120;
  const top = 16;
  const bottom = 18;
  const max = Math.max(1, ...minutes.map((m) => m.pins));
  const slot = width / Math.max(1, minutes.length);
  const plot = height - top - bottom;
  const total = minutes.reduce((sum, m) => sum + m.pins, 0);
  return (
    <figure class="chart">
      <svg
        viewBox={`0 0 ${width} ${height}`}
        role="img"
        aria-label={`Pins per minute over the last hour: ${total} in all, at most ${max} in one minute`}
      >
        <line class="axis" x1="0" y1={height - bottom} x2={width} y2={height - bottom} />
        <line class="grid" x1="0" y1={top} x2={width} y2={top} />
        <text class="label" x="2" y={top - 4}>
          {max}/min
        </text>
        {minutes.map((m, i) => {
          const h = m.pins === 0 ? 0 : Math.max(2, (m.pins / max) * plot);
          return (
            <rect
              class="bar"
              x={(i * slot + 1).toFixed(1)}
              y={(height - bottom - h).toFixed(1)}
              width={(slot - 2).toFixed(1)}
              height={h.toFixed(1)}
            >
              <title>{`${m.minute.toISOString().slice(11, 16)} UTC: ${m.pins} pins`}</title>
            </rect>
          );
        })}
        <text class="label" x="2" y={height - 4}>
          60 min ago
        </text>
        <text class="label end" x={width - 2} y={height - 4}>
          now
        </text>
      </svg>
      <figcaption>
        Pins per minute, last hour: <b data-stat="pins.lastHour">{total}</b>
      </figcaption>
    </figure>
  );
}
