import * as dagJson from "@ipld/dag-json";

/**
 * JSON values become IPLD the way Kubo's `dag put --input-codec=dag-json` reads them:
 * `{"/": "bafy…"}` is a link, `{"/": {"bytes": "…"}}` is bytes. Values that are already IPLD
 * (CID objects, Uint8Array, bigint for integers beyond 2^53) survive, because dag-json
 * writes them in exactly that form. Throws a TypeError for undefined and whatever dag-json
 * throws for other values outside the data model (callers turn that into
 * InvalidDagValueError).
 */
export function toIpld(value: unknown): unknown {
  if (value === undefined) throw new TypeError("undefined is not a JSON value");
  return dagJson.decode(dagJson.encode(value));
}
