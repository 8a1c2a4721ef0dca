import { existsSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..", "..");

/** The Go daemons scripts/tools.sh builds into .tools/bin, or the binary an override names. */
export type ToolName = "ipfs" | "ipfs-cluster-service" | "ipfs-cluster-ctl";

const OVERRIDES: Record<ToolName, string> = {
  ipfs: "QUASAR_IPFS_BIN",
  "ipfs-cluster-service": "QUASAR_CLUSTER_SERVICE_BIN",
  "ipfs-cluster-ctl": "QUASAR_CLUSTER_CTL_BIN",
};

/** Path of a tool; throws with the command that builds it when it is missing. */
export function toolPath(name: ToolName): string {
  const path = process.env[OVERRIDES[name]] || join(ROOT, ".tools", "bin", name);
  if (!existsSync(path)) {
    throw new Error(
      `${name} not found at ${path}: run \`npm run tools\` (needs Go >= 1.26) or set ${OVERRIDES[name]}`,
    );
  }
  return path;
}
