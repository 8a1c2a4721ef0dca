import type { Backend } from "./backend.js";
import {
  CLUSTER_FORMS,
  createClusterBackend,
  parseClusterConnectionString,
} from "./cluster/index.js";
import {
  maskConnectionString,
  type SplitConnectionString,
  splitConnectionString,
} from "./connection-string.js";
import { DuplicateBackendError, InvalidConnectionStringError } from "./errors.js";
import { createHeliaBackend, HELIA_FORMS, parseHeliaConnectionString } from "./helia/index.js";
import { createKuboBackend, KUBO_FORMS, parseKuboConnectionString } from "./kubo/index.js";
import { createPsaBackend, PSA_FORMS, parsePsaConnectionString } from "./psa/index.js";

/**
 * The registry of backend kinds: designator → how to build one from its connection string.
 * A new kind (the Pinning Service API as `psa+https://…`, IPFS Cluster as `cluster+http://…`)
 * is one folder implementing the roles it can play (a PinBackend, and a ContentBackend when it
 * serves bytes) plus one entry here; the engine never changes.
 */
export type BackendKind = {
  /** Documented forms, listed in every connection-string error. */
  forms: readonly string[];
  /**
   * Builds the backend with every role its kind plays (nothing connects until open()); throws
   * InvalidConnectionStringError.
   */
  create(raw: string, parts: SplitConnectionString, acceptedForms: readonly string[]): Backend;
};

export const BACKEND_KINDS: Readonly<Record<string, BackendKind>> = {
  ipfs: {
    forms: KUBO_FORMS,
    create: (raw, parts, forms) => createKuboBackend(parseKuboConnectionString(raw, parts, forms)),
  },
  helia: {
    forms: HELIA_FORMS,
    create: (raw, parts, forms) => {
      if (parts.transport !== undefined) {
        throw new InvalidConnectionStringError(
          maskConnectionString(raw),
          'helia takes no "+transport"',
          forms,
        );
      }
      return createHeliaBackend(parseHeliaConnectionString(raw, parts.rest, forms));
    },
  },
  cluster: {
    forms: CLUSTER_FORMS,
    create: (raw, parts, forms) =>
      createClusterBackend(parseClusterConnectionString(raw, parts, forms)),
  },
  psa: {
    forms: PSA_FORMS,
    create: (raw, parts, forms) => createPsaBackend(parsePsaConnectionString(raw, parts, forms)),
  },
};

/** Every accepted form, for error messages and `--help`. */
export const ACCEPTED_BACKEND_FORMS: readonly string[] = Object.values(BACKEND_KINDS).flatMap(
  (kind) => kind.forms,
);

/** The backend used when none is configured. */
export const DEFAULT_BACKEND = "helia://.quasar/ipfs";

/** Builds one backend from its connection string; throws InvalidConnectionStringError naming the masked string. */
export function createBackend(raw: string): Backend {
  const parts = splitConnectionString(raw, ACCEPTED_BACKEND_FORMS);
  const kind = BACKEND_KINDS[parts.designator];
  if (!kind) {
    throw new InvalidConnectionStringError(
      maskConnectionString(raw),
      `unknown backend kind "${parts.designator}"`,
      ACCEPTED_BACKEND_FORMS,
    );
  }
  return kind.create(raw, parts, ACCEPTED_BACKEND_FORMS);
}

/**
 * Builds every configured backend at once, so a bad string stops start-up before anything
 * connects. Two strings naming the same backend (same id) are refused. Nothing is opened.
 */
export function parseBackends(strings: readonly string[]): Backend[] {
  const list = strings.length === 0 ? [DEFAULT_BACKEND] : strings;
  const backends: Backend[] = [];
  const byId = new Map<string, Backend>();
  for (const raw of list) {
    const backend = createBackend(raw);
    const previous = byId.get(backend.id);
    if (previous) throw new DuplicateBackendError(backend.id, [previous.label, backend.label]);
    byId.set(backend.id, backend);
    backends.push(backend);
  }
  return backends;
}

export {
  type Backend,
  type ContentCapableBackend,
  hasContent,
  requireContent,
} from "./backend.js";
export { maskConnectionString } from "./connection-string.js";
export type { AddResult, ContentBackend, DagNode, StoreOptions } from "./content-backend.js";
export * from "./errors.js";
export type { BackendLifecycle } from "./lifecycle.js";
export {
  listingKey,
  type PinBackend,
  type PinListing,
  type PinOptions,
  QUASAR_PIN_NAME,
} from "./pin-backend.js";
