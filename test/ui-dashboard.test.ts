/**
 * The operator dashboard (/ui) in a real headless Chromium (Debian's package, driven by
 * playwright-core) against `quasar start` in its production shape: real Postgres, anvil with
 * the contracts, an offline helia backend. One upload pins; one on-chain CID that no backend
 * can fetch fails past its short deadline. Each view loads, its numbers equal
 * `quasar status --json` on the same stack, the failing pin shows under stuck with its error,
 * an admin retries it, the overview updates without a reload, and nothing secret reaches the
 * page. Screenshots go to test/artifacts/ (git-ignored).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import getPort from "get-port";
import { base36 } from "multiformats/bases/base36";
import { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyIdOf } from "@/api/auth.js";
import { type Anvil, deployContracts, pinMany, startAnvil } from "./harness/anvil.js";
import { purgeSyncCache, uniqueChainId } from "./harness/ponder.js";
import { createTestSchema, type TestSchema } from "./harness/postgres.js";

const ROOT = join(import.meta.dirname, "..");
const NODE = join(ROOT, "node_modules", ".bin", "node");
const QUASAR = join(ROOT, "bin", "quasar.js");
const ARTIFACTS = join(import.meta.dirname, "artifacts", "ui");
const CHROMIUM = process.env.QUASAR_CHROMIUM_BIN ?? "/usr/bin/chromium";
const ADMIN_TOKEN = "ui-test-admin-token-7f3a9c";
const API_KEY = "ui-test-api-key-51be02";
const run = promisify(execFile);

let anvil: Anvil;
let indexerSchema: TestSchema;
let reconcilerSchema: TestSchema;
let cwd: string;
let ipfsDir: string;
let profileDir: string;
let start: ChildProcess | undefined;
let output = "";
let env: Record<string, string>;
let base: string;
let context: BrowserContext | undefined;

type StatusJson = {
  chains: {
    chainId: number;
    head: string | null;
    indexedBlock: string | null;
    finalizedBlock: string | null;
    lagBlocks: number | null;
  }[];
  desired: Record<"desired" | "confirmed" | "pending" | "optimistic" | "demoted", number>;
  backends: {
    backendId: string;
    pinned: number;
    pinning: number;
    queued: number;
    failed: number;
    lagSeconds: number;
  }[];
  backendHealth: { backendId: string; state: string }[] | null;
};

async function status(): Promise<StatusJson> {
  const { stdout } = await run(NODE, [QUASAR, "status", "--json"], { cwd, env });
  return JSON.parse(stdout) as StatusJson;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (start?.exitCode !== null && start?.exitCode !== undefined)
      throw new Error(`quasar start exited (${start.exitCode})\n${output.slice(-4000)}`);
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}\n${output.slice(-3000)}`);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

async function upload(text: string): Promise<string> {
  const form = new FormData();
  form.append("entry", new Blob([text]), "note.txt");
  const response = await fetch(`${base}/api/v0/add`, {
    method: "POST",
    body: form,
    headers: { authorization: `Bearer ${API_KEY}` },
  });
  expect(response.status).toBe(201);
  return response.text();
}

/** Every number the page marks with data-stat (data-value when the text is formatted). */
async function stats(page: Page): Promise<Record<string, string>> {
  return page.$$eval("[data-stat]", (elements) =>
    Object.fromEntries(
      elements.map((element) => [
        element.getAttribute("data-stat") ?? "",
        element.getAttribute("data-value") ?? element.textContent?.trim() ?? "",
      ]),
    ),
  );
}

/** What the overview must show, from `quasar status --json`; lag seconds compared apart. */
function expectedOverview(report: StatusJson): Record<string, string> {
  const expected: Record<string, string> = {};
  const show = (value: string | number | null) => (value === null ? "-" : String(value));
  for (const chain of report.chains) {
    expected[`chain.${chain.chainId}.head`] = show(chain.head);
    expected[`chain.${chain.chainId}.indexedBlock`] = show(chain.indexedBlock);
    expected[`chain.${chain.chainId}.finalizedBlock`] = show(chain.finalizedBlock);
    expected[`chain.${chain.chainId}.lagBlocks`] = show(chain.lagBlocks);
  }
  for (const [key, value] of Object.entries(report.desired))
    expected[`desired.${key}`] = String(value);
  for (const backend of report.backends) {
    for (const key of ["pinned", "pinning", "queued", "failed"] as const)
      expected[`backend.${backend.backendId}.${key}`] = String(backend[key]);
  }
  return expected;
}

function withoutLag(values: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).filter(
      ([key]) => !key.endsWith(".lagSeconds") && key !== "pins.lastHour",
    ),
  );
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  anvil = await startAnvil({ chainId: uniqueChainId() });
  indexerSchema = await createTestSchema("uii");
  reconcilerSchema = await createTestSchema("uir");
  cwd = await mkdtemp(join(tmpdir(), "quasar-ui-"));
  ipfsDir = await mkdtemp(join(tmpdir(), "quasar-ui-ipfs-"));
  profileDir = await mkdtemp(join(tmpdir(), "quasar-ui-chromium-"));
}, 60_000);

afterAll(async () => {
  await context?.close().catch(() => {});
  if (start && start.exitCode === null) {
    const exited = new Promise((resolve) => start?.once("exit", resolve));
    start.kill("SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 15_000))]);
    if (start.exitCode === null) start.kill("SIGKILL");
  }
  await anvil?.stop();
  await purgeSyncCache(indexerSchema.databaseUrl, anvil ? [anvil.chainId] : []).catch(() => {});
  await indexerSchema?.drop();
  await reconcilerSchema?.drop();
  for (const dir of [cwd, ipfsDir, profileDir])
    if (dir) await rm(dir, { recursive: true, force: true });
}, 60_000);

describe("the operator dashboard in Chromium", () => {
  it("shows every view with the numbers of `quasar status --json`, stuck pins with their error, retry-now and live updates", async () => {
    const { registry, storage } = await deployContracts(anvil);
    const [apiPort, indexerPort, metricsPort] = [await getPort(), await getPort(), await getPort()];
    base = `http://127.0.0.1:${apiPort}`;
    env = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      DATABASE_URL: indexerSchema.databaseUrl,
      QUASAR_INDEXER_SCHEMA: indexerSchema.schema,
      QUASAR_RECONCILER_SCHEMA: reconcilerSchema.schema,
      QUASAR_CHAINS: JSON.stringify([{ id: anvil.chainId, rpc: anvil.rpcUrl, registry }]),
      QUASAR_BACKENDS: `helia://${ipfsDir}?offline=true`,
      QUASAR_API_PORT: String(apiPort),
      QUASAR_INDEXER_PORT: String(indexerPort),
      QUASAR_METRICS_PORT: String(metricsPort),
      QUASAR_ADMIN_TOKEN: ADMIN_TOKEN,
      QUASAR_API_KEYS: API_KEY,
      QUASAR_UI_PUBLIC: "overview",
      QUASAR_RATE_LIMIT: "0",
      // A pin no backend can fetch fails within seconds.
      QUASAR_PIN_DEADLINE: "2s",
      QUASAR_PIN_INACTIVITY_TIMEOUT: "3s",
      QUASAR_RECONCILE_INTERVAL: "300ms",
      QUASAR_RETRY_BASE: "200ms",
      QUASAR_RETRY_MAX: "500ms",
      QUASAR_LOG_LEVEL: "warn",
    };
    start = spawn(NODE, [QUASAR, "start"], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    const collect = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-100_000);
    };
    start.stdout?.on("data", collect);
    start.stderr?.on("data", collect);
    await until("the API", async () => ((await fetch(`${base}/healthz`)).ok ? true : undefined));
    await until("the indexer", async () =>
      (await fetch(`http://127.0.0.1:${indexerPort}/ready`)).status === 200 ? true : undefined,
    );

    // One upload (pinned by the API itself) and one on-chain CID nobody has (fails).
    const uploaded = await upload("a note the dashboard counts");
    const missing = CID.createV0(
      await sha256.digest(new TextEncoder().encode(`never stored ${Date.now()}`)),
    );
    const missingV1 = missing.toV1().toString();
    const pinTx = await pinMany(anvil, storage, [missing.toString()]);
    const settled = await until("the failed pin", async () => {
      const report = await status();
      const [backend] = report.backends;
      return backend &&
        backend.failed === 1 &&
        backend.pinned === 1 &&
        backend.queued === 0 &&
        backend.pinning === 0
        ? report
        : undefined;
    });
    const backendId = settled.backends[0]?.backendId as string;

    context = await chromium.launchPersistentContext(profileDir, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const traffic: { url: string; method: string; body: string; request: string }[] = [];
    page.on("response", async (response) => {
      const request = response.request();
      const body = await response.text().catch(() => "");
      traffic.push({
        url: response.url(),
        method: request.method(),
        body,
        request: request.postData() ?? "",
      });
    });
    const consoleErrors: string[] = [];
    page.on("console", (message) => {
      if (message.type() === "error") consoleErrors.push(message.text());
    });

    // Overview, public (QUASAR_UI_PUBLIC=overview): its numbers are `quasar status --json`'s.
    await page.goto(`${base}/ui`);
    await expect(page.title()).resolves.toBe("Overview · Quasar");
    const publicStats = await stats(page);
    const asked = Date.now();
    const report = await status();
    expect(withoutLag(publicStats)).toEqual(expectedOverview(report));
    // The lag grows by the second: the CLI read it after the page, within the time it took.
    const lag = Number(publicStats[`backend.${backendId}.lagSeconds`]);
    const cliLag = report.backends[0]?.lagSeconds ?? -100;
    expect(cliLag - lag).toBeGreaterThanOrEqual(-1);
    expect(cliLag - lag).toBeLessThanOrEqual(Math.ceil((Date.now() - asked) / 1_000) + 2);
    expect(publicStats[`backend.${backendId}.failed`]).toBe("1");
    expect(Number(publicStats["pins.lastHour"])).toBeGreaterThanOrEqual(1);
    // The navigation offers only the public view and a sign-in link.
    expect(await page.$$eval("nav a", (links) => links.map((link) => link.textContent))).toEqual([
      "Overview",
    ]);
    await shot(page, "overview-public");

    // Stuck is not public: the sign-in page, then the admin token signs in and returns there.
    const denied = await page.goto(`${base}/ui/stuck`);
    expect(denied?.status()).toBe(401);
    await page.fill('input[name="token"]', "not the token");
    await page.click('button[type="submit"]');
    await expect(page.textContent(".error")).resolves.toContain("not the admin token");
    await page.fill('input[name="token"]', ADMIN_TOKEN);
    await Promise.all([
      page.waitForURL(`${base}/ui/stuck`),
      page.click('form.stack button[type="submit"]'),
    ]);
    const cookies = await context.cookies(`${base}/ui`);
    const session = cookies.find((cookie) => cookie.name === "quasar_ui");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Strict", path: "/ui" });
    expect(session?.value).not.toContain(ADMIN_TOKEN);
    expect(await page.evaluate("document.cookie")).toBe("");

    // Stuck: the failing pin, failed, with its error.
    const row = page.locator(`tr[data-cid="${missingV1}"]`);
    await expect(row.locator('[data-field="status"]').textContent()).resolves.toBe("failed");
    const stuckError = (await row.locator('[data-field="lastError"]').textContent()) ?? "";
    expect(stuckError.length).toBeGreaterThan(0);
    expect((await stats(page))["stuck.total"]).toBe("1");
    await shot(page, "stuck");

    // Pin: looked up in another spelling (base36 CIDv1); every reason with chain, contract,
    // transaction and block; the backend's status, attempts and error; the reconcile log.
    await page.goto(`${base}/ui/pin`);
    await page.fill('input[name="cid"]', missing.toV1().toString(base36));
    await Promise.all([page.waitForURL(/\/ui\/pin\?cid=/), page.click("form.search button")]);
    await expect(page.getAttribute("h2.cid", "data-cid")).resolves.toBe(missingV1);
    const reasons = await page
      .locator("section:has(h3:text('Reasons')) tbody tr")
      .first()
      .textContent();
    expect(reasons).toContain(String(anvil.chainId));
    expect(reasons).toContain(storage.toLowerCase());
    expect(reasons).toContain(pinTx);
    const backendRow = page.locator(`tr[data-backend="${backendId}"]`);
    await expect(backendRow.locator('[data-field="status"]').textContent()).resolves.toBe("failed");
    expect(
      Number(await backendRow.locator('[data-field="attempts"]').textContent()),
    ).toBeGreaterThanOrEqual(1);
    await expect(backendRow.locator('[data-field="lastError"]').textContent()).resolves.toBe(
      stuckError,
    );
    const logText = (await page.locator("table.log").textContent()) ?? "";
    expect(logText).toContain("mark_failed");
    await shot(page, "pin");
    // The upload, looked up in its CIDv0 spelling: pinned, an optimistic reason.
    await page.goto(`${base}/ui/pin?cid=${uploaded}`);
    await expect(
      page.locator(`tr[data-backend="${backendId}"] [data-field="status"]`).textContent(),
    ).resolves.toBe("pinned");
    expect(await page.locator("section:has(h3:text('Reasons')) tbody").textContent()).toContain(
      "optimistic",
    );

    // Backends: health, the same counts, and the failing CID short of its one copy.
    await page.goto(`${base}/ui/backends`);
    const backendStats = await stats(page);
    const now = await status();
    for (const key of ["pinned", "pinning", "queued", "failed"] as const)
      expect(backendStats[`backend.${backendId}.${key}`]).toBe(String(now.backends[0]?.[key]));
    expect(backendStats["replication.required"]).toBe("1");
    expect(backendStats["replication.short"]).toBe("1");
    await expect(
      page.locator(`[data-backend="${backendId}"] [data-field="health"]`).textContent(),
    ).resolves.toBe(now.backendHealth?.[0]?.state);
    expect(await page.locator(`[data-backend="${backendId}"] table.log`).textContent()).toContain(
      missingV1,
    );
    await shot(page, "backends");

    // Keys and usage: the key by its id (never the key), with its one upload.
    await page.goto(`${base}/ui/keys`);
    const keyRow = page.locator(`tr[data-uploader="${keyIdOf(API_KEY)}"]`);
    await expect(keyRow.locator('[data-field="uploads"]').textContent()).resolves.toBe("1");
    await shot(page, "keys");

    // Actions need the session's CSRF token and this origin.
    const cookieHeader = `quasar_ui=${session?.value}`;
    const forged = await fetch(`${base}/ui/stuck/retry`, {
      method: "POST",
      headers: { cookie: cookieHeader, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ backend: backendId, cid: missingV1, csrf: "guessed" }),
      redirect: "manual",
    });
    expect(forged.status).toBe(403);
    const csrf = await page.getAttribute('input[name="csrf"]', "value");
    const crossSite = await fetch(`${base}/ui/stuck/retry`, {
      method: "POST",
      headers: {
        cookie: cookieHeader,
        origin: "https://evil.example",
        "content-type": "application/x-www-form-urlencoded",
      },
      body: new URLSearchParams({ backend: backendId, cid: missingV1, csrf: csrf ?? "" }),
      redirect: "manual",
    });
    expect(crossSite.status).toBe(403);

    // Retry now (admin): queued again, logged as asked from the dashboard.
    await page.goto(`${base}/ui/stuck`);
    await Promise.all([
      page.waitForURL(/retried=requeued/),
      page.locator(`tr[data-cid="${missingV1}"] button`).click(),
    ]);
    await expect(page.textContent('[role="status"]')).resolves.toContain("Queued again");
    await shot(page, "stuck-retried");
    await page.goto(`${base}/ui/pin?cid=${missingV1}`);
    expect(await page.locator("table.log").textContent()).toContain(
      "retry now, asked from the dashboard",
    );
    // …and the reconciler takes it at once, not after QUASAR_FAILED_RETRY_INTERVAL (6 h).
    await expect
      .poll(
        async () => {
          await page.reload();
          return page.locator("table.log").textContent();
        },
        { timeout: 30_000, interval: 1_000 },
      )
      .toContain("of a failed pin");

    // Live: the overview updates without a reload when a new upload is pinned.
    await page.goto(`${base}/ui`);
    // A reload would drop this marker.
    await page.evaluate("window.marker = 1");
    const before = Number((await stats(page))[`backend.${backendId}.pinned`]);
    await upload("a second note, pinned while the page is open");
    await expect
      .poll(() => page.textContent(`[data-stat="backend.${backendId}.pinned"]`), {
        timeout: 30_000,
        interval: 500,
      })
      .toBe(String(before + 1));
    expect(await page.evaluate("window.marker")).toBe(1);
    await until("a settled stack", async () => {
      const settledAgain = await status();
      return settledAgain.backends[0]?.queued === 0 && settledAgain.backends[0]?.pinning === 0
        ? true
        : undefined;
    });
    // After the next refresh the page again equals the CLI.
    await page.waitForTimeout(6_000);
    expect(withoutLag(await stats(page))).toEqual(expectedOverview(await status()));
    await shot(page, "overview-admin");

    // Nothing secret in the page or its network calls: the token goes out once, in the
    // sign-in form the operator typed it into; no answer carries it or the API key.
    for (const exchange of traffic) {
      expect(exchange.body).not.toContain(ADMIN_TOKEN);
      expect(exchange.body).not.toContain(API_KEY);
      expect(exchange.url).not.toContain(ADMIN_TOKEN);
      if (!(exchange.method === "POST" && exchange.url === `${base}/ui/login`))
        expect(exchange.request).not.toContain(ADMIN_TOKEN);
    }
    expect(traffic.filter((exchange) => exchange.url.startsWith(base) === false)).toEqual([]);
    // No script error, no CSP refusal; the 401s are the sign-in pages asked for above.
    expect(consoleErrors.filter((text) => !text.includes("status of 401"))).toEqual([]);

    // Sign out: the admin views are closed again.
    await Promise.all([page.waitForURL(`${base}/ui`), page.click(".who button")]);
    const after = await page.goto(`${base}/ui/keys`);
    expect(after?.status()).toBe(401);
    // Minutes on a loaded 2-core machine: `quasar start`, Chromium and one `quasar status` per check.
  }, 480_000);
});
