import type { CID } from "multiformats/cid";
import type { KuboAddParams } from "@/backends/add-options.js";
import { QUASAR_PIN_NAME } from "@/backends/pin-backend.js";
import { type DirectoryLink, encodeDirectory } from "@/backends/unixfs-directory.js";
import { readLimited } from "./body.js";
import type { ApiCommon } from "./context.js";
import { InvalidArgumentError, MissingFileError } from "./errors.js";
import { multipartBoundary, parseMultipart } from "./multipart.js";
import { recordAndPin, storeOnBackend, uploadBackend } from "./upload.js";

/**
 * Kubo's `add` on the Kubo mount: every part of the multipart body is a file or a directory
 * (`application/x-directory`), its path the URL-encoded Content-Disposition filename
 * (`dir%2Fa.txt`), as `ipfs add -r` and kubo-rpc-client send them. Nothing is dropped: every
 * file is stored, and the answer has one line per file and per directory in Kubo's order
 * (files as they arrive; then, for each top-level entry, its directories children first, by
 * name; with `wrap-with-directory`, one wrapper named "" last).
 *
 * What is pinned is what Kubo pins: each top-level entry's root (or the wrapper). Each root
 * goes through the upload path's rules (recorded before it is pinned, api/upload.ts), one
 * after another once every file is stored. `only-hash` stores, records and pins nothing.
 */

/** One line of Kubo's answer. */
export type KuboAddLine = { Name: string; Hash: string; Size: string };

/** Most parts in one add (a `-r` add sends one per file and directory). */
export const KUBO_ADD_MAX_PARTS = 4096;

type FileEntry = { kind: "file"; cid: CID; dagSize: number };
type DirEntry = { kind: "dir"; children: Map<string, Entry> };
type Entry = FileEntry | DirEntry;

export async function addKuboEntries(
  common: ApiCommon,
  request: Request,
  options: { params: KuboAddParams; uploader: string; signal: AbortSignal },
): Promise<KuboAddLine[]> {
  const { params } = options;
  const unixfs = params.options;
  const boundary = multipartBoundary(request.headers.get("content-type") ?? undefined);
  const source = readLimited(
    request,
    common.config.QUASAR_MAX_UPLOAD_BYTES,
    options.signal,
    common.config.QUASAR_BODY_IDLE_TIMEOUT,
  );
  const backend = uploadBackend(common);
  const lines: KuboAddLine[] = [];
  const roots: { cid: CID; size: number }[] = [];
  const line = (name: string, cid: CID, dagSize: number) =>
    lines.push({ Name: name, Hash: cid.toString(), Size: String(dagSize) });

  // With wrap-with-directory every part lives under one wrapper named "".
  const wrapper: DirEntry | undefined = params.wrapWithDirectory
    ? { kind: "dir", children: new Map() }
    : undefined;
  let open: { name: string; dir: DirEntry } | undefined;
  const finished = new Set<string>();
  let bytes = 0;
  let parts = 0;

  // A top-level directory is complete when a part of another entry arrives (or at the end):
  // then its directory lines are written and its root kept for pinning, as Kubo does.
  const closeOpen = async () => {
    if (!open) return;
    const root = await storeDirectory(open.dir, open.name);
    roots.push({ cid: root.cid, size: root.dagSize });
    finished.add(open.name);
    open = undefined;
  };

  const storeDirectory = async (
    dir: DirEntry,
    path: string,
  ): Promise<{ cid: CID; dagSize: number }> => {
    const links: DirectoryLink[] = [];
    for (const name of [...dir.children.keys()].sort(compareBytes)) {
      const child = dir.children.get(name) as Entry;
      const childPath = path === "" ? name : `${path}/${name}`;
      const stored = child.kind === "file" ? child : await storeDirectory(child, childPath);
      links.push({ name, cid: stored.cid, dagSize: stored.dagSize });
    }
    const encoded = await encodeDirectory(links, unixfs.cidVersion);
    if (!encoded) {
      throw new InvalidArgumentError(
        `directory "${path}" is too large for a basic UnixFS directory (Kubo would shard it as a HAMT, which Quasar does not build); split it`,
      );
    }
    if (!unixfs.onlyHash) {
      await storeOnBackend(
        common,
        backend,
        "add",
        async (signal) => {
          await backend.content.putBlock(encoded.cid, encoded.bytes, { signal });
          return { cid: encoded.cid, size: encoded.dagSize };
        },
        options.signal,
      );
    }
    line(path, encoded.cid, encoded.dagSize);
    return { cid: encoded.cid, dagSize: encoded.dagSize };
  };

  for await (const part of parseMultipart(source, boundary, { maxParts: KUBO_ADD_MAX_PARTS })) {
    parts += 1;
    const isDir = (part.contentType ?? "").split(";")[0]?.trim() === "application/x-directory";
    const path = entryPath(part.filename);
    const segments = path === "" ? [] : path.split("/");
    const top = segments[0];

    if (!wrapper) {
      if (open && top !== open.name) await closeOpen();
      if (top !== undefined && finished.has(top)) {
        throw new InvalidArgumentError(
          `the parts of "${top}" must be sent together (another entry came between them)`,
        );
      }
    }
    // The directory that receives this part, creating implicit parents as Kubo does.
    let parent: DirEntry | undefined = wrapper;
    if (!wrapper && segments.length > 1) {
      if (!open) open = { name: top as string, dir: { kind: "dir", children: new Map() } };
      parent = open.dir;
    }
    const inner = wrapper ? segments : segments.slice(1);
    for (const segment of inner.slice(0, -1)) {
      const existing: Entry | undefined = parent?.children.get(segment);
      if (existing?.kind === "file") {
        throw new InvalidArgumentError(`"${path}": "${segment}" is a file, not a directory`);
      }
      const next: DirEntry = existing ?? { kind: "dir", children: new Map() };
      parent?.children.set(segment, next);
      parent = next;
    }
    const name = inner.at(-1);
    if (parent && name === undefined) {
      throw new InvalidArgumentError("an entry inside a directory needs a filename");
    }

    if (isDir) {
      if (!parent) {
        // A top-level directory part opens its entry.
        if (!top) throw new InvalidArgumentError("a directory part needs a filename");
        if (open?.name !== top) open = { name: top, dir: { kind: "dir", children: new Map() } };
        continue;
      }
      const existing = parent.children.get(name as string);
      if (existing?.kind === "file") {
        throw new InvalidArgumentError(`"${path}" is sent both as a file and as a directory`);
      }
      if (!existing) parent.children.set(name as string, { kind: "dir", children: new Map() });
      continue;
    }

    if (parent?.children.has(name as string)) {
      throw new InvalidArgumentError(`"${path}" is sent twice`);
    }
    let dagSize = 0;
    const stored = await storeOnBackend(
      common,
      backend,
      "add",
      async (signal) => {
        let size = 0;
        const counted = (async function* () {
          for await (const chunk of part.body) {
            size += chunk.byteLength;
            yield chunk;
          }
        })();
        const added = await backend.content.addFile(counted, {
          name: QUASAR_PIN_NAME,
          signal,
          pin: false,
          unixfs,
        });
        dagSize = added.dagSize;
        return { cid: added.cid, size };
      },
      options.signal,
    );
    bytes += stored.size;
    // Kubo names an unnamed file by its CID.
    line(path === "" ? stored.cid.toString() : path, stored.cid, dagSize);
    if (parent) parent.children.set(name as string, { kind: "file", cid: stored.cid, dagSize });
    else roots.push({ cid: stored.cid, size: stored.size });
  }
  if (parts === 0) throw new MissingFileError(["file"]);
  await closeOpen();
  if (wrapper) {
    const root = await storeDirectory(wrapper, "");
    roots.push({ cid: root.cid, size: root.dagSize });
  }

  if (!unixfs.onlyHash) {
    for (const root of roots) {
      await recordAndPin(common, backend, root, "add", options);
    }
    common.metrics.uploads.inc({ kind: "add", outcome: "stored" }, roots.length);
    common.metrics.uploadBytes.inc({ kind: "add" }, bytes);
  }
  return lines;
}

/** The part's path: its URL-decoded filename, checked to stay a relative path. */
function entryPath(filename: string | undefined): string {
  if (filename === undefined || filename === "") return "";
  let path: string;
  try {
    path = decodeURIComponent(filename);
  } catch {
    throw new InvalidArgumentError(`the filename "${filename}" is not valid URL encoding`);
  }
  const segments = path.split("/");
  if (segments.some((segment) => segment === "" || segment === "." || segment === "..")) {
    throw new InvalidArgumentError(
      `the path "${path}" must be relative, without empty, "." or ".." segments`,
    );
  }
  return path;
}

/** Kubo (Go) sorts names by their bytes. */
function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
