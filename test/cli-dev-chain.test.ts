/**
 * `quasar dev`'s local chain (cli/runtime/anvil.ts) on a real anvil: it keeps its blocks
 * across a restart, and a long run leaves no past states on disk. anvil writes those to
 * $HOME/.foundry/anvil/tmp, so the chain runs with a HOME of its own here.
 */
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import getPort from "get-port";
import { createPublicClient, createTestClient, http } from "viem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startLocalChain } from "@/cli/runtime/anvil.js";

/** More blocks than anvil keeps in memory by default (it starts writing at about 1,500). */
const BLOCKS = 2_500;

async function filesUnder(dir: string): Promise<number> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((entry) => entry.isFile()).length;
  } catch {
    return 0; // never created
  }
}

describe("quasar dev's local chain", () => {
  let home: string;
  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), "quasar-dev-chain-"));
  });
  afterAll(async () => {
    await rm(home, { recursive: true, force: true });
  });

  it("writes no past states to disk however many blocks it mines, and keeps its blocks across a restart", async () => {
    const start = async () =>
      startLocalChain({
        dir: join(home, "chain"),
        port: await getPort({ host: "127.0.0.1" }),
        log: new PassThrough(),
        env: { ...process.env, HOME: home },
      });
    const first = await start();
    let mined: bigint;
    try {
      const client = createPublicClient({ transport: http(first.rpcUrl) });
      await createTestClient({ mode: "anvil", transport: http(first.rpcUrl) }).mine({
        blocks: BLOCKS,
      });
      mined = await client.getBlockNumber();
      expect(mined).toBeGreaterThanOrEqual(BigInt(BLOCKS));
      expect(await filesUnder(join(home, ".foundry", "anvil", "tmp"))).toBe(0);
    } finally {
      await first.stop();
    }
    expect(await filesUnder(join(home, ".foundry", "anvil", "tmp"))).toBe(0);

    const second = await start();
    try {
      const client = createPublicClient({ transport: http(second.rpcUrl) });
      expect(await client.getBlockNumber()).toBeGreaterThanOrEqual(mined);
      // An old block is still there: the indexer reads blocks and logs, not past states.
      expect((await client.getBlock({ blockNumber: 1n })).number).toBe(1n);
    } finally {
      await second.stop();
    }
  });
});
