import * as dagJson from "@ipld/dag-json";

/**
 * JSON values become IPLD the way Kubo's `dag put --input-codec=dag-json` reads them:
 * `{"/": "bafy…"}` is a link, `{"/": {"bytes": "…"}}` is bytes. Values that are already IPLD
 * (CID objects, Uint8Array) survive, because their JSON form is exactly that. Throws a
 * TypeError for undefined and whatever JSON.stringify or dag-json throw for other values
 * that are not JSON (callers turn that into InvalidDagValueError).
 */
export function toIpld(value: unknown): unknown {
  if (value === undefined) throw new TypeError("undefined is not a JSON value");
  return dagJson.decode(dagJson.encode(JSON.parse(JSON.stringify(value, bytesAsJson)) as unknown));
}

function bytesAsJson(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array)
    return { "/": { bytes: Buffer.from(value).toString("base64").replace(/=+$/, "") } };
  return value;
}
