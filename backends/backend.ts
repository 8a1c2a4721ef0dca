import type { ContentBackend } from "./content-backend.js";
import { MissingBackendRoleError } from "./errors.js";
import type { BackendLifecycle } from "./lifecycle.js";
import type { PinBackend } from "./pin-backend.js";

/**
 * What one connection string yields: the roles its backend plays, under one lifecycle. Every
 * backend pins; a backend that also stores and serves bytes (helia, Kubo) has `content`. An
 * IPFS Cluster or Pinning Service API backend will have `pins` only.
 *
 * `open`, `close` and `ping` act on every role at once; `id` and `label` are the same on the
 * record and on each role.
 */
export interface Backend extends BackendLifecycle {
  readonly pins: PinBackend;
  readonly content?: ContentBackend;
}

/** A backend that stores and serves bytes as well as pinning them. */
export type ContentCapableBackend = Backend & { readonly content: ContentBackend };

export function hasContent(backend: Backend): backend is ContentCapableBackend {
  return backend.content !== undefined;
}

/**
 * The backend itself when it has the content role; otherwise a MissingBackendRoleError that
 * names the backend and what needed the role (`purpose`, e.g. "take uploads").
 */
export function requireContent(backend: Backend, purpose: string): ContentCapableBackend {
  if (hasContent(backend)) return backend;
  throw new MissingBackendRoleError(backend.label, "content", purpose);
}
