/**
 * A network namespace of the test's own, reached from the test process over one veth pair:
 * `10.201.<n>.1` on our side, `10.201.<n>.2` inside, loopback up, and no default route in
 * the namespace, so nothing a daemon there sends can leave the machine (IPFS Cluster turns on
 * UPnP / NAT-PMP port mapping and has no setting to stop it). Needs root (`ip netns`).
 *
 * Namespaces are named `qcl-<pid>-<n>`; start-up removes those whose test process is gone.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export type NetNamespace = {
  name: string;
  /** The namespace's own address (daemons listen here). */
  address: string;
  /** Our end of the veth pair. */
  hostAddress: string;
  /** `ip netns exec <name>` prefix for a command. */
  exec: readonly string[];
  /** The namespace's routing table (`ip route` inside it). */
  routes(): Promise<string>;
  /** Deletes the namespace (and with it the veth pair). Idempotent. */
  destroy(): Promise<void>;
};

const PREFIX = "qcl-";

async function ip(...args: string[]): Promise<string> {
  return (await run("ip", args, { timeout: 15_000 })).stdout;
}

/** Removes namespaces a test process that no longer runs left behind. */
async function removeStale(): Promise<void> {
  const list = await ip("netns", "list").catch(() => "");
  for (const line of list.split("\n")) {
    const name = line.split(" ")[0] ?? "";
    const pid = Number(/^qcl-(\d+)-/.exec(name)?.[1]);
    if (!name.startsWith(PREFIX) || !Number.isSafeInteger(pid)) continue;
    try {
      process.kill(pid, 0);
    } catch {
      // The process that made it is gone: its daemons were killed with it (tethered).
      await ip("netns", "del", name).catch(() => undefined);
    }
  }
}

/** Creates a namespace with a /30 of its own from 10.201.0.0/16. */
export async function createNetNamespace(): Promise<NetNamespace> {
  await removeStale();
  const used = await ip("-4", "addr", "show").catch(() => "");
  for (let attempt = 0; attempt < 20; attempt++) {
    const n = 1 + Math.floor(Math.random() * 250);
    const hostAddress = `10.201.${n}.1`;
    const address = `10.201.${n}.2`;
    if (used.includes(`${hostAddress}/`)) continue;
    const name = `${PREFIX}${process.pid}-${n}`;
    const outer = `qc${process.pid.toString(36)}${n.toString(36)}a`.slice(0, 15);
    const inner = `${outer.slice(0, -1)}b`;
    try {
      await ip("netns", "add", name);
    } catch {
      continue;
    }
    const destroy = async () => {
      await ip("netns", "del", name).catch(() => undefined);
      await ip("link", "del", outer).catch(() => undefined);
    };
    try {
      await ip("link", "add", outer, "type", "veth", "peer", "name", inner);
      await ip("link", "set", inner, "netns", name);
      await ip("addr", "add", `${hostAddress}/30`, "dev", outer);
      await ip("link", "set", outer, "up");
      const exec = ["ip", "netns", "exec", name] as const;
      await run(exec[0], [...exec.slice(1), "ip", "addr", "add", `${address}/30`, "dev", inner]);
      await run(exec[0], [...exec.slice(1), "ip", "link", "set", inner, "up"]);
      await run(exec[0], [...exec.slice(1), "ip", "link", "set", "lo", "up"]);
      return {
        name,
        address,
        hostAddress,
        exec,
        routes: async () => (await run(exec[0], [...exec.slice(1), "ip", "route"])).stdout,
        destroy,
      };
    } catch (error) {
      await destroy();
      throw error;
    }
  }
  throw new Error("no free 10.201.<n>.0/30 for a test network namespace");
}
