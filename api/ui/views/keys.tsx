import type { UploaderUsage } from "@/db/uploads/usage.js";
import { formatBytes, formatTime } from "../format.js";

/**
 * Keys and usage (admins only): each configured API key by its id (never the key), its
 * uploads, and the uploads of callers without a key (anonymous, when keys are off).
 */
export function KeysView(props: { keyIds: readonly string[]; usage: readonly UploaderUsage[] }) {
  const byUploader = new Map(props.usage.map((usage) => [usage.uploader, usage]));
  const others = props.usage.filter((usage) => !props.keyIds.includes(usage.uploader));
  return (
    <>
      <h1>Keys and usage</h1>
      <p class="muted">
        {props.keyIds.length === 0
          ? "No API key is configured (QUASAR_API_KEYS): anyone may upload."
          : `${props.keyIds.length} API key${props.keyIds.length === 1 ? "" : "s"} (QUASAR_API_KEYS), shown by id.`}
      </p>
      <table>
        <thead>
          <tr>
            <th>Uploader</th>
            <th class="num">Uploads</th>
            <th class="num">Still desired</th>
            <th class="num">Bytes</th>
            <th>Last upload</th>
          </tr>
        </thead>
        <tbody>
          {[...props.keyIds.map((id) => ({ id, usage: byUploader.get(id), key: true }))]
            .concat(others.map((usage) => ({ id: usage.uploader, usage, key: false })))
            .map(({ id, usage, key }) => (
              <tr data-uploader={id}>
                <td class="mono">
                  {id}
                  {key ? <span class="badge">key</span> : null}
                </td>
                <td class="num" data-field="uploads">
                  {usage?.uploads ?? 0}
                </td>
                <td class="num">{usage?.live ?? 0}</td>
                <td class="num">{formatBytes(usage?.bytes ?? 0n)}</td>
                <td>{usage ? formatTime(usage.lastUploadAt) : "-"}</td>
              </tr>
            ))}
        </tbody>
      </table>
    </>
  );
}
