import type { Command } from "commander";
import {
  type BackendHealthLine,
  collectStatusReport,
  type StatusReport,
} from "@/api/status-report.js";
import { describeError } from "@/core/errors.js";
import { openDatabase, toJson } from "../common.js";
import { commandEnvironment } from "../dev-env.js";
import { addSettingOptions, applySettingFlags, resolveConfig } from "../settings.js";
import { formatTable } from "../table.js";

export type { BackendHealthLine, StatusReport } from "@/api/status-report.js";

/** `quasar status`: one snapshot of every part (api/status-report.ts, shared with the dashboard). */
export async function collectStatus(
  env: Readonly<Record<string, string | undefined>>,
): Promise<StatusReport> {
  const { config } = resolveConfig(env);
  const problems: string[] = [];
  const labels = new Map<string, string>();
  try {
    const { parseBackends } = await import("@/backends/index.js");
    for (const backend of parseBackends(config.QUASAR_BACKENDS))
      labels.set(backend.id, backend.label);
  } catch (error) {
    problems.push(`backends: ${describeError(error)}`);
  }
  const db = openDatabase(config, "quasar-status");
  try {
    return await collectStatusReport({ config, db, labels, problems });
  } finally {
    await db.destroy();
  }
}

const show = (value: bigint | number | null | undefined) =>
  value === null || value === undefined ? "-" : value.toString();

export function formatStatus(report: StatusReport): string {
  const lines: string[] = [];
  lines.push(
    formatTable(
      ["CHAIN", "HEAD", "INDEXED", "FINALIZED", "RPC"],
      report.chains.map((chain) => [
        String(chain.chainId),
        show(chain.head),
        show(chain.indexedBlock),
        show(chain.finalizedBlock),
        chain.error ? `${chain.rpc} (${chain.error})` : chain.rpc,
      ]),
    ),
  );
  lines.push("");
  const desired = report.desired;
  lines.push(
    desired
      ? `desired ${desired.desired}  (confirmed ${desired.confirmed}, pending ${desired.pending}, optimistic ${desired.optimistic}, demoted ${desired.demoted}, psa ${desired.psa})`
      : "desired -",
  );
  lines.push("");
  lines.push(
    formatTable(
      ["BACKEND", "PINNED", "PINNING", "QUEUED", "FAILED", "LAG"],
      report.backends.map((backend) => [
        backend.label,
        String(backend.pinned),
        String(backend.pinning),
        String(backend.queued),
        String(backend.failed),
        `${backend.lagSeconds}s`,
      ]),
    ),
  );
  if (report.backendHealth) lines.push("", formatBackendHealth(report.backendHealth));
  for (const problem of report.problems) lines.push(`! ${problem}`);
  return `${lines.join("\n")}\n`;
}

export function formatBackendHealth(lines: readonly BackendHealthLine[]): string {
  return formatTable(
    ["BACKEND", "STATE", "FOR", "LAST ERROR"],
    lines.map((line) => [
      line.label,
      line.state === "unknown"
        ? `unknown (last report ${line.reportedSecondsAgo}s ago)`
        : line.state,
      `${line.forSeconds}s`,
      line.lastError ?? "-",
    ]),
  );
}

export function registerStatusCommand(program: Command, _signal: AbortSignal): void {
  addSettingOptions(
    program
      .command("status")
      .description(
        "Per chain head, indexed and finalized block; desired, pending, optimistic and demoted counts; per backend pinned, pinning, queued, failed and lag",
      )
      .option("--json", "print JSON for scripts"),
    { hidden: true },
  ).action(async (options: Record<string, unknown>) => {
    const report = await collectStatus(
      applySettingFlags(options, commandEnvironment(process.env, process.cwd())),
    );
    process.stdout.write(options.json === true ? `${toJson(report)}\n` : formatStatus(report));
  });
}
