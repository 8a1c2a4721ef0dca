/** Display helpers shared by the dashboard's views: pure, no markup. */

/** 42s, 3m 20s, 10m, 2h 5m, 3d 4h. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const two = (big: number, bigUnit: string, small: number, smallUnit: string) =>
    small === 0 ? `${big}${bigUnit}` : `${big}${bigUnit} ${small}${smallUnit}`;
  if (s < 60) return `${s}s`;
  if (s < 3_600) return two(Math.floor(s / 60), "m", s % 60, "s");
  if (s < 86_400) return two(Math.floor(s / 3_600), "h", Math.floor((s % 3_600) / 60), "m");
  return two(Math.floor(s / 86_400), "d", Math.floor((s % 86_400) / 3_600), "h");
}

/** 2026-11-30 08:31:05 UTC: one fixed format, whatever the browser's locale. */
export function formatTime(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** 1.5 MiB, 12 KiB, 300 B. */
export function formatBytes(bytes: bigint): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = Number(bytes);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} ${units[0]}` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A number or a dash when unknown. */
export function show(value: bigint | number | null | undefined): string {
  return value === null || value === undefined ? "-" : value.toString();
}
