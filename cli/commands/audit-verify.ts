import { randomInt } from "node:crypto";
import { CID } from "multiformats/cid";
import type { Backend } from "@/backends/backend.js";
import type { ContentBackend } from "@/backends/content-backend.js";
import { listingKey, QUASAR_PIN_NAME } from "@/backends/pin-backend.js";
import { describeError } from "@/core/errors.js";
import { streamDesiredPages } from "@/db/desired/index.js";
import { isMissingRelation } from "@/db/errors.js";
import { ownedCids } from "@/db/ledger/reads.js";
import { requiredReplicas } from "@/reconciler/engine/decide-replicas.js";
import { openDatabase, parseWholeNumber, toJson } from "../common.js";
import { DatabaseReadError, UsageError } from "../errors.js";
import { createProgress } from "../progress.js";
import { resolveConfig } from "../settings.js";
import { formatTable } from "../table.js";

/** What one backend holds compared with the desired set. */
export type BackendVerification = {
  backend: string;
  /** Set when the backend could not be listed; the other fields are then empty. */
  error?: string;
  pinned: number;
  /** Desired CIDs the backend does not pin. */
  missing: string[];
  /** Pins Quasar made (ledger says owned, or the pin carries Quasar's name) that are not desired. */
  extraOurs: string[];
  /** Pins Quasar did not make: left alone, listed for information. */
  foreign: number;
  /** --sample: CIDs checked block by block, and those found incomplete. */
  sampled: { cid: string; complete: boolean; blocks: number; problem?: string }[];
};

/** A desired CID held in fewer copies than QUASAR_MIN_REPLICAS asks, across every backend. */
export type DegradedCid = { cid: string; copies: number; required: number };

const SAMPLE_TIMEOUT_MS = 30_000;

export async function verifyBackends(
  options: { sample?: string },
  env: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
): Promise<{
  desired: number;
  required: number;
  degraded: DegradedCid[];
  backends: BackendVerification[];
}> {
  const { config } = resolveConfig(env);
  const sample = options.sample === undefined ? 0 : parseWholeNumber(options.sample, "--sample");
  const { parseBackends } = await import("@/backends/index.js");
  const backends = parseBackends(config.QUASAR_BACKENDS);
  const db = openDatabase(config, "quasar-audit-verify");
  const schema = config.QUASAR_RECONCILER_SCHEMA;
  try {
    const desired = new Set<string>();
    const loading = createProgress("reading the desired set", { unit: "CIDs" });
    try {
      for await (const page of streamDesiredPages(db, schema, { signal })) {
        for (const cid of page) desired.add(cid);
        loading.update(desired.size);
      }
      loading.done();
    } catch (error) {
      if (isMissingRelation(error)) {
        throw new UsageError("the desired set does not exist yet", {
          details: `no table ${schema}.desired_cid: has the reconciler run on this database?`,
          cause: error,
        });
      }
      throw error;
    }
    // Which pins are Quasar's own comes from the ledger; without it every pin Quasar made
    // under another name would be reported as foreign. No ledger, no report.
    const owned = new Map<string, Set<string>>();
    try {
      for (const backend of backends)
        owned.set(backend.id, await ownedCids(db, schema, backend.id));
    } catch (error) {
      throw new DatabaseReadError("cannot read the pin ledger", {
        details: `${schema}.pin_ledger: ${describeError(error)}; without it Quasar's own pins would be reported as foreign`,
        cause: error,
      });
    }
    const results: BackendVerification[] = [];
    // Copies of each desired CID across backends: a cluster counts each peer that pinned it.
    const copies = new Map<string, number>();
    for (const backend of backends) {
      const ours = owned.get(backend.id) ?? new Set<string>();
      results.push(await verifyOne(backend, desired, ours, sample, signal, copies));
    }
    const required = requiredReplicas(
      config.QUASAR_MIN_REPLICAS,
      backends.length,
      backends.some((backend) => backend.pins.countsCopies === true),
    );
    const degraded: DegradedCid[] = [];
    for (const cid of desired) {
      const held = copies.get(cid) ?? 0;
      if (held < required) degraded.push({ cid, copies: held, required });
    }
    return { desired: desired.size, required, degraded, backends: results };
  } finally {
    await db.destroy();
  }
}

async function verifyOne(
  backend: Backend,
  desired: ReadonlySet<string>,
  owned: ReadonlySet<string>,
  sample: number,
  signal: AbortSignal,
  copies: Map<string, number>,
): Promise<BackendVerification> {
  const result: BackendVerification = {
    backend: backend.label,
    pinned: 0,
    missing: [],
    extraOurs: [],
    foreign: 0,
    sampled: [],
  };
  const listing = createProgress(`listing ${backend.label}'s pins`, { unit: "pins" });
  try {
    await backend.open();
    const pinned = new Set<string>();
    for await (const pin of backend.pins.listPins({ signal })) {
      const cid = listingKey(pin);
      pinned.add(cid);
      listing.update(pinned.size);
      if (desired.has(cid)) {
        copies.set(cid, (copies.get(cid) ?? 0) + (pin.copies ?? 1));
        continue;
      }
      if (owned.has(cid) || pin.name === QUASAR_PIN_NAME) result.extraOurs.push(cid);
      else result.foreign++;
    }
    listing.done();
    result.pinned = pinned.size;
    for (const cid of desired) if (!pinned.has(cid)) result.missing.push(cid);
    const candidates = [...desired].filter((cid) => pinned.has(cid));
    const sampling = createProgress(`checking ${backend.label}'s blocks`, { unit: "CIDs" });
    const sampleSize = Math.min(sample, candidates.length);
    for (let index = 0; index < sample && candidates.length > 0; index++) {
      sampling.update(index, sampleSize);
      const [cid] = candidates.splice(randomInt(candidates.length), 1) as [string];
      result.sampled.push(
        backend.content
          ? await checkBlocks(backend.content, cid, signal)
          : {
              cid,
              complete: false,
              blocks: 0,
              problem: "the backend only pins: no blocks to read",
            },
      );
    }
    if (sampleSize > 0) sampling.update(sampleSize, sampleSize);
    sampling.done();
  } catch (error) {
    listing.done();
    result.error = describeError(error);
  } finally {
    await backend.close().catch(() => {});
  }
  return result;
}

/**
 * Walks one CID's DAG on the backend: the root must be local (hasBlock never fetches), and
 * the whole DAG must export. A backend that fetches missing blocks while exporting hides a
 * hole it can fill; the timeout bounds one that cannot.
 */
async function checkBlocks(backend: ContentBackend, cid: string, signal: AbortSignal) {
  const parsed = CID.parse(cid);
  const timeout = AbortSignal.any([signal, AbortSignal.timeout(SAMPLE_TIMEOUT_MS)]);
  try {
    if (!(await backend.hasBlock(parsed, { signal: timeout }))) {
      return { cid, complete: false, blocks: 0, problem: "root block not stored locally" };
    }
    const { CarBlockIterator } = await import("@ipld/car");
    const blocks = await CarBlockIterator.fromIterable(
      backend.exportCar(parsed, { signal: timeout }),
    );
    let count = 0;
    for await (const _ of blocks) count++;
    return { cid, complete: true, blocks: count };
  } catch (error) {
    return { cid, complete: false, blocks: 0, problem: describeError(error) };
  }
}

export async function runAuditVerify(
  options: { sample?: string; json?: boolean },
  env: Readonly<Record<string, string | undefined>>,
  signal: AbortSignal,
): Promise<number> {
  const report = await verifyBackends(options, env, signal);
  const failed =
    report.degraded.length > 0 ||
    report.backends.some(
      (backend) =>
        backend.error !== undefined ||
        backend.missing.length > 0 ||
        backend.sampled.some((item) => !item.complete),
    );
  if (options.json) {
    process.stdout.write(`${toJson({ ok: !failed, ...report })}\n`);
  } else {
    process.stdout.write(
      `desired CIDs: ${report.desired}, copies required: ${report.required}, degraded: ${report.degraded.length}\n`,
    );
    process.stdout.write(
      `${formatTable(
        ["BACKEND", "PINNED", "MISSING", "EXTRA (OURS)", "FOREIGN", "SAMPLED", "ERROR"],
        report.backends.map((backend) => [
          backend.backend,
          String(backend.pinned),
          String(backend.missing.length),
          String(backend.extraOurs.length),
          String(backend.foreign),
          backend.sampled.length === 0
            ? "-"
            : `${backend.sampled.filter((item) => item.complete).length}/${backend.sampled.length} complete`,
          backend.error ?? "",
        ]),
      )}\n`,
    );
    for (const item of report.degraded) {
      process.stdout.write(`degraded ${item.cid}: ${item.copies} of ${item.required} copies\n`);
    }
    for (const backend of report.backends) {
      for (const cid of backend.missing)
        process.stdout.write(`missing  ${backend.backend}  ${cid}\n`);
      for (const cid of backend.extraOurs)
        process.stdout.write(`extra    ${backend.backend}  ${cid}\n`);
      for (const item of backend.sampled.filter((entry) => !entry.complete)) {
        process.stdout.write(`incomplete ${backend.backend}  ${item.cid}: ${item.problem ?? ""}\n`);
      }
    }
  }
  return failed ? 1 : 0;
}
