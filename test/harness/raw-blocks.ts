import { randomBytes } from "node:crypto";
import { CarWriter } from "@ipld/car/writer";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";

/**
 * `count` distinct raw blocks of `size` random bytes, as a CAR (no roots) and their CIDs:
 * one `dag/import` stores thousands of pinnable CIDs in a Kubo node in a second.
 */
export async function rawBlocksCar(
  count: number,
  size = 64,
): Promise<{ cids: string[]; car: Uint8Array }> {
  const { writer, out } = CarWriter.create([]);
  const chunks: Uint8Array[] = [];
  const collected = (async () => {
    for await (const chunk of out) chunks.push(chunk);
  })();
  const cids: string[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = randomBytes(size);
    const cid = CID.createV1(raw.code, await sha256.digest(bytes));
    cids.push(cid.toString());
    await writer.put({ cid, bytes });
  }
  await writer.close();
  await collected;
  return { cids, car: Buffer.concat(chunks) };
}
