/**
 * A JSON-RPC proxy in front of a node, for tests of what the indexer sends: it counts every
 * call (each element of a batch) with its arrival time, and can hold requests (a black hole
 * on the path to the node: connections accepted, no answer) until released.
 *
 * ```ts
 * const proxy = await startRpcProxy(anvil.rpcUrl);
 * // point Ponder at proxy.url …
 * expect(proxy.maxPerWindow(1_000)).toBeLessThanOrEqual(25);
 * ```
 */
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";

export type RpcProxy = {
  url: string;
  /** Arrival time (performance.now(), ms) and method of every call, in order. */
  calls: { at: number; method: string }[];
  /** HTTP requests received (a JSON-RPC batch is one request of several calls). */
  readonly requests: number;
  /** Most calls that arrived within any `windowMs` (a sliding window). */
  maxPerWindow(windowMs: number): number;
  /** From now on, requests get no answer until release(). */
  hold(): void;
  /** Answers the held requests and every later one. */
  release(): void;
  close(): Promise<void>;
};

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString();
}

export async function startRpcProxy(target: string): Promise<RpcProxy> {
  const calls: RpcProxy["calls"] = [];
  let requests = 0;
  let held: (() => void)[] | undefined;
  const server = createServer(async (request, response) => {
    // Arrival is when the request's head is in, before its body is read.
    const at = performance.now();
    requests++;
    const body = await readBody(request);
    try {
      const parsed = JSON.parse(body) as { method?: string } | { method?: string }[];
      for (const call of Array.isArray(parsed) ? parsed : [parsed])
        calls.push({ at, method: String(call.method) });
    } catch {
      calls.push({ at, method: "<unparsable>" });
    }
    if (held !== undefined) await new Promise<void>((resolve) => held?.push(resolve));
    try {
      const answer = await fetch(target, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body,
      });
      response.writeHead(answer.status, { "content-type": "application/json" });
      response.end(await answer.text());
    } catch {
      response.destroy();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const release = () => {
    const waiting = held ?? [];
    held = undefined;
    for (const resolve of waiting) resolve();
  };
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    get requests() {
      return requests;
    },
    maxPerWindow(windowMs) {
      let max = 0;
      let start = 0;
      for (let end = 0; end < calls.length; end++) {
        while ((calls[end]?.at ?? 0) - (calls[start]?.at ?? 0) >= windowMs) start++;
        max = Math.max(max, end - start + 1);
      }
      return max;
    },
    hold() {
      held ??= [];
    },
    release,
    async close() {
      release();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
