import type {
  GraphNode,
  GraphWalkerComponents,
  GraphWalkerFactory,
  WalkOptions,
} from "@helia/interface";
import { createUnsafe } from "multiformats/block";
import type { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";

/** Blocks fetched ahead of the walk, so a DAG fetched from the network loads in parallel. */
const PREFETCH = 16;

/**
 * A depth-first DAG walker for helia's pins.add and for CAR export. It replaces helia's own
 * walkers because those re-throw a failed block load into an already finished generator,
 * which surfaces as an unhandled promise rejection and kills the process (seen with helia 7.1
 * when a block is missing offline). Here every load is awaited by the walk or has a handler
 * attached, so a missing block fails the walk and nothing else.
 */
export function safeWalker(): GraphWalkerFactory {
  return (components: GraphWalkerComponents) => ({
    async *walk<T = unknown>(
      root: CID,
      options: WalkOptions<T> = {},
    ): AsyncGenerator<GraphNode<T>> {
      const maxDepth = options.depth ?? Number.POSITIVE_INFINITY;
      type Item = { cid: CID; depth: number; path: CID[]; bytes?: Promise<Uint8Array> };
      const load = (cid: CID): Promise<Uint8Array> => {
        const pending = collect(components.blockstore.get(cid, options));
        pending.catch(() => undefined); // awaited later, or dropped when the walk fails first
        return pending;
      };
      const stack: Item[] = [{ cid: root, depth: 0, path: [root] }];
      while (stack.length > 0) {
        for (let index = Math.max(0, stack.length - PREFETCH); index < stack.length; index++) {
          const item = stack[index];
          if (item && !item.bytes) item.bytes = load(item.cid);
        }
        const item = stack.pop();
        if (!item) break;
        options.signal?.throwIfAborted();
        const bytes = await (item.bytes ?? load(item.cid));
        const codec = await components.getCodec(item.cid.code);
        const block = createUnsafe({ bytes, cid: item.cid, codec }) as GraphNode<T>["block"];
        yield { block, depth: item.depth, path: item.path };
        if (item.depth >= maxDepth) continue;
        const children: Item[] = [];
        for (const [, link] of block.links()) {
          if (options.includeChild?.(link, block) === false) continue;
          children.push({ cid: link, depth: item.depth + 1, path: [...item.path, link] });
        }
        // reversed so the first link is walked first
        for (let index = children.length - 1; index >= 0; index--) {
          const child = children[index];
          if (child) stack.push(child);
        }
      }
    },
  });
}

/**
 * The walker for pins.add and pins.rm, which read only each block's CID and links. A raw
 * block has no links, so one stored locally is not read at all: pinning a 1 GiB upload then
 * reads its ~25 dag-pb nodes instead of 1 GiB of leaves (garbage that raised the peak RSS by
 * ~20-30 MB). A raw block not stored here is fetched as before, so a pin still brings the
 * whole DAG. The CAR export keeps the plain walker: it needs every block's bytes.
 */
export function pinWalker(): GraphWalkerFactory {
  const walker = safeWalker();
  return (components) => {
    const store = components.blockstore;
    const blockstore = new Proxy(store, {
      get(target, property) {
        if (property !== "get") {
          const value: unknown = Reflect.get(target, property, target);
          return typeof value === "function" ? value.bind(target) : value;
        }
        return async function* get(cid: CID, options?: Parameters<typeof target.get>[1]) {
          if (cid.code === raw.code && (await target.has(cid, options))) {
            yield NO_BYTES;
            return;
          }
          yield* target.get(cid, options);
        };
      },
    });
    return walker({ ...components, blockstore });
  };
}
const NO_BYTES = new Uint8Array(0);

async function collect(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | Uint8Array | Promise<Uint8Array>,
): Promise<Uint8Array> {
  const resolved = await source;
  if (resolved instanceof Uint8Array) return resolved;
  const chunks: Uint8Array[] = [];
  for await (const chunk of resolved) chunks.push(chunk);
  return chunks.length === 1 && chunks[0] ? chunks[0] : Buffer.concat(chunks);
}
