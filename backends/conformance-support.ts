import { randomBytes } from "node:crypto";
import { CID } from "multiformats/cid";
import * as raw from "multiformats/codecs/raw";
import { sha256 } from "multiformats/hashes/sha2";
import type { PinBackend } from "./pin-backend.js";

/** Helpers shared by the pin and content conformance suites. */

/** A CID whose block exists nowhere: random bytes, never stored. */
export async function absentCid(): Promise<CID> {
  return CID.createV1(raw.code, await sha256.digest(randomBytes(32)));
}

export async function* chunked(bytes: Uint8Array, chunkSize: number): AsyncGenerator<Uint8Array> {
  for (let offset = 0; offset < bytes.byteLength; offset += chunkSize) {
    yield bytes.subarray(offset, Math.min(offset + chunkSize, bytes.byteLength));
  }
}

export async function readAll(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of source) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Every recursive pin: CID (v1 text) → name. */
export async function pinned(pins: PinBackend): Promise<Map<string, string | undefined>> {
  const all = new Map<string, string | undefined>();
  for await (const pin of pins.listPins({})) all.set(pin.cid.toV1().toString(), pin.name);
  return all;
}
