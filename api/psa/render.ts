import type { PsaRequestRecord } from "@/db/psa/index.js";

/** The Pinning Service API's `PinStatus` object, as served. */
export type PinStatusJson = {
  requestid: string;
  status: PsaRequestRecord["status"];
  created: string;
  pin: { cid: string; name?: string; origins: string[]; meta: Record<string, string> };
  delegates: string[];
  info: Record<string, string>;
};

/**
 * A request as the spec's `PinStatus`: the CID as the client gave it, `created` in RFC 3339
 * with ms, `info.status_details` with the last error a backend reported and `info.dag_size`
 * when Quasar knows the DAG's size.
 */
export function renderPinStatus(
  record: PsaRequestRecord,
  delegates: readonly string[],
): PinStatusJson {
  const info: Record<string, string> = {};
  if (record.lastError !== null) info.status_details = record.lastError;
  if (record.dagSize !== null) info.dag_size = String(record.dagSize);
  return {
    requestid: record.requestid,
    status: record.status,
    created: record.created.toISOString(),
    pin: {
      cid: record.cidGiven,
      ...(record.name !== null ? { name: record.name } : {}),
      origins: record.origins,
      meta: record.meta,
    },
    delegates: [...delegates],
    info,
  };
}
