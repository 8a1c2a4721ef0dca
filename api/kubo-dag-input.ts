import * as dagCbor from "@ipld/dag-cbor";
import * as dagJson from "@ipld/dag-json";
import { InvalidArgumentError } from "./errors.js";

/**
 * Decodes the body of a Kubo `dag/put` by its `input-codec`, refusing the inputs for which
 * Quasar would store another node than Kubo does (and so answer another CID):
 *
 *   - a float with a safe-integer value (`1.0`, `1e3`, a CBOR float 2.0): Kubo keeps it a
 *     float, JavaScript has one number type and the encoders write any safe integer as an
 *     integer (larger integral values such as 1e300 stay floats, as in Kubo);
 *   - with `input-codec=json`, a map with a "/" key: Kubo's json codec reads it as a plain
 *     map, while backends read values the dag-json way (`{"/": "bafy…"}` is a link).
 *
 * Both are refused with a message saying why; everything else decodes as Kubo decodes it.
 */
export type KuboInputCodec = "dag-cbor" | "dag-json" | "json";

export function decodeKuboDagInput(bytes: Uint8Array, codec: KuboInputCodec): unknown {
  let value: unknown;
  try {
    if (codec === "dag-cbor") value = dagCbor.decode(bytes);
    else if (codec === "dag-json") value = dagJson.decode(bytes);
    else {
      // Plain JSON is dag-json without links and bytes: once no map has a "/" key (refused
      // below), the dag-json decoder reads it as Kubo's json codec does, integers beyond
      // 2^53 included (JSON.parse would round them).
      const plain: unknown = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
      if (hasSlashKey(plain, 0)) {
        throw new InvalidArgumentError(
          'input-codec=json with a map keyed "/" is not supported: Quasar would store it as a dag-json link and Kubo as a plain map; use input-codec=dag-json',
        );
      }
      value = dagJson.decode(bytes);
    }
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    throw new InvalidArgumentError(`the body is not valid ${codec}: ${message.slice(0, 200)}`);
  }
  const float = codec === "dag-cbor" ? integralCborFloat(bytes) : integralJsonFloat(bytes);
  if (float !== undefined) {
    throw new InvalidArgumentError(
      `the float ${float} has an integral value, which Quasar would store as an integer (Kubo keeps it a float, so the CID would differ): send it as an integer, or store it elsewhere`,
    );
  }
  return value;
}

/** The text of the first number literal written as a float (`.`, `e`) with an integral value. */
function integralJsonFloat(bytes: Uint8Array): string | undefined {
  const text = new TextDecoder().decode(bytes);
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === "\\") i++;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') {
      inString = true;
      continue;
    }
    if (ch === "-" || (ch !== undefined && ch >= "0" && ch <= "9")) {
      const literal = /^-?\d+(\.\d*)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))?.[0] ?? ch;
      i += literal.length - 1;
      if (/[.eE]/.test(literal) && Number.isSafeInteger(Number(literal))) return literal;
    }
  }
  return undefined;
}

/**
 * The first CBOR float (major type 7, 16/32/64-bit) with an integral value. CBOR is a flat
 * sequence of heads, each followed by a payload only for byte and text strings, so a linear
 * walk over heads sees every float without decoding the structure.
 */
function integralCborFloat(bytes: Uint8Array): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;
  while (pos < bytes.byteLength) {
    const head = bytes[pos] ?? 0;
    const major = head >> 5;
    const info = head & 31;
    pos += 1;
    let argument = 0;
    if (major === 7 && info >= 25 && info <= 27) {
      const value =
        info === 25
          ? halfFloat(view.getUint16(pos))
          : info === 26
            ? view.getFloat32(pos)
            : view.getFloat64(pos);
      if (Number.isSafeInteger(value)) return String(value);
      pos += info === 25 ? 2 : info === 26 ? 4 : 8;
      continue;
    }
    if (info < 24) argument = info;
    else if (info === 24) argument = view.getUint8(pos);
    else if (info === 25) argument = view.getUint16(pos);
    else if (info === 26) argument = view.getUint32(pos);
    else if (info === 27) argument = Number(view.getBigUint64(pos));
    pos += info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (major === 2 || major === 3) pos += argument;
  }
  return undefined;
}

function halfFloat(bits: number): number {
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

function hasSlashKey(value: unknown, depth: number): boolean {
  if (depth > 1_000 || value === null || typeof value !== "object") return false;
  if (Array.isArray(value)) return value.some((item) => hasSlashKey(item, depth + 1));
  if (Object.hasOwn(value, "/")) return true;
  return Object.values(value).some((item) => hasSlashKey(item, depth + 1));
}
