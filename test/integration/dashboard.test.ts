// The run dashboard in a real browser (headless Chromium driven by playwright-core): a short real `steppo run`
// (live through `--ui`), then `steppo ui` on its directory — curves, a clicked point opening that update's
// episodes with V(c_t) and Â_t per step — and on bad input (missing, half-written, truncated runs), which must
// show messages, never a blank page. With STEPPO_UPDATE_DOCS=1 it also rewrites docs/dashboard.png, the README's picture.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { parseCurveCsv } from "../../runtime/dashboard/curve-file.ts";
import type { EpisodeSampleFile } from "../../learner/episode-sample.ts";
import { pollUntil } from "../support/poll.ts";

const ROOT = join(import.meta.dirname, "../..");
const BIN = join(ROOT, "bin/steppo.mjs");
const CHROMIUM = "/usr/bin/chromium";

// Small enough to train in seconds, warm enough (a tiny knowledge base, longer steps) that episodes succeed and
// fail, so V(c_t) and Â_t are not all zero.
const JOB = `apiVersion: steppo.dev/v1alpha1
kind: StepPOJob
metadata:
  name: dash
spec:
  seed: 3
  algorithm: { estimator: step-gae, minibatchSteps: 16 }
  model: { dModel: 32, layers: 1, heads: 2, contextLength: 160 }
  environment: { name: multihop-qa, maxSteps: 4, maxStepTokens: 20, config: { people: 4, films: 2, cities: 2, companies: 2 } }
  warmup: { demonstrations: 64, epochs: 8, minibatchSteps: 16, learningRate: 0.01 }
  rollout: { episodesPerUpdate: 8 }
  training: { updates: 3, evalEvery: 1, evalEpisodes: 8 }
  checkpoint: { interval: 1, keep: 1 }
`;

/** CI is a fresh machine (as root): install Debian's chromium the way a developer would. */
function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update"], ["install", "-y", "chromium"]]) {
    const r = spawnSync("apt-get", args, { env, encoding: "utf8", timeout: 900_000 });
    assert.equal(r.status, 0, `apt-get ${args.join(" ")} failed (needed for the dashboard test): ${r.stderr}`);
  }
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is still missing after apt-get install chromium`);
}

/** pollUntil with this file's default deadline of 60 s. */
const waitFor = <T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> => pollUntil(what, timeoutMs, check);

interface Proc {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function steppo(args: string[]): Proc {
  const child = spawn(process.execPath, [BIN, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    err += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

const started: Proc[] = [];

/** `steppo ui ARGS --port 0`; resolves with the URL it prints. */
async function startUi(args: string[]): Promise<string> {
  const p = steppo(["ui", ...args, "--port", "0"]);
  started.push(p);
  return waitFor(`steppo ui to print its URL (stderr: ${p.stderr()})`, () => /^(http:\/\/127\.0\.0\.1:\d+\/)$/m.exec(p.stdout())?.[1], 30_000);
}

let dir: string;
let runDir: string;
let browser: BrowserContext;
let page: Page;
let liveObservation: { state: string; points: number } | undefined;

before(async () => {
  ensureChromium();
  dir = mkdtempSync(join(tmpdir(), "steppo-dashboard-"));
  runDir = join(dir, "run");
  writeFileSync(join(dir, "dash.yaml"), JOB);
  const run = steppo(["run", join(dir, "dash.yaml"), "--run-dir", runDir, "--ui", "0"]);
  started.push(run);
  // Live: while it trains, the run's own dashboard serves the curve so far (no summary yet).
  const liveUrl = await waitFor("steppo run --ui to log its URL", () => /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(run.stderr())?.[1], 120_000);
  const finished = { done: false };
  run.exited.then(() => {
    finished.done = true;
  });
  liveObservation = await waitFor(
    "the live dashboard to show a running run with an update on its curve",
    async () => {
      if (finished.done) return { state: "exited before observed", points: 0 };
      const res = await fetch(`${liveUrl}api/runs`).catch(() => undefined);
      if (!res?.ok) return undefined;
      const { runs } = (await res.json()) as { runs: { state: string; curve: unknown[] }[] };
      return runs[0]?.state === "running" && runs[0].curve.length >= 2 ? { state: runs[0].state, points: runs[0].curve.length } : undefined;
    },
    240_000,
  );
  assert.equal(await run.exited, 0, run.stderr());
  browser = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "steppo-chromium-")), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = browser.pages()[0] ?? (await browser.newPage());
});

after(async () => {
  await browser?.close();
  for (const p of started) if (p.child.exitCode === null) p.child.kill("SIGTERM");
  await Promise.all(started.map((p) => p.exited));
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("steppo run --ui serves the curve while the run trains", () => {
  assert.equal(liveObservation?.state, "running");
  assert.ok((liveObservation?.points ?? 0) >= 2);
});

test("steppo ui shows a finished run's curves and opens a clicked update's episodes step by step", { timeout: 120_000 }, async () => {
  const curve = parseCurveCsv(readFileSync(join(runDir, "curve.csv"), "utf8")).points;
  assert.equal(curve.length, 4, "update 0 + 3 updates");
  const url = await startUi([runDir]);
  await page.goto(url);
  await page.waitForSelector('figure[data-metric="success"] canvas');
  assert.equal(await page.getAttribute('figure[data-metric="success"]', "data-points"), String(curve.length));
  assert.equal(await page.locator("#curve-table tbody tr").count(), curve.length);
  assert.equal(await page.textContent('[data-run="0"] .badge'), "finished");
  for (const metric of ["meanReturn", "policyLoss", "valueLoss", "entropy", "clipFraction", "approxKl", "explainedVariance", "gradNorm", "throughput"]) {
    assert.equal(await page.locator(`figure[data-metric="${metric}"] canvas`).count(), 1, `${metric} is drawn`);
  }

  // Click update 2's point on the success chart (uPlot draws on a canvas: its scales give the pixel).
  const target = curve[2];
  const pos = await page.evaluate(
    ([x, y]) => {
      const u = (globalThis as unknown as { steppoDashboard: { charts: { valToPos(v: number, s: string): number }[] } }).steppoDashboard.charts[0];
      return { left: u.valToPos(x, "x"), top: u.valToPos(y, "y") };
    },
    [target.envSteps, target.testSuccess ?? 0],
  );
  await page.locator('figure[data-metric="success"] .u-over').click({ position: { x: pos.left, y: pos.top } });
  await page.waitForSelector("#steps-table .step-row");
  assert.equal(await page.inputValue("#inspect-update"), String(target.update));

  const file = JSON.parse(readFileSync(join(runDir, "episodes", "update-000002.json"), "utf8")) as EpisodeSampleFile;
  assert.ok(file.episodes.length > 0 && file.episodes.length <= 8);
  assert.equal(await page.locator("#episode-list li").count(), file.episodes.length);
  const first = file.episodes[0];
  const rows = page.locator("#steps-table .step-row");
  assert.equal(await rows.count(), first.steps.length);
  const step = first.steps[0];
  assert.notEqual(step.value, null, "step-gae has a critic");
  assert.equal(await rows.nth(0).locator(".value").textContent(), (step.value as number).toFixed(3));
  assert.equal(await rows.nth(0).locator(".advantage").textContent(), step.advantage.toFixed(3));
  assert.equal(await rows.nth(0).locator(".ratio").textContent(), step.ratio.toFixed(4));
  assert.equal(await rows.nth(0).locator(".action").textContent(), step.action.join(" "));

  // The outcome filter keeps only the sampled successes (or failures).
  const successes = file.episodes.filter((e) => e.success).length;
  await page.selectOption("#filter-outcome", "success");
  await waitFor("the success filter", async () => ((await page.locator("#episode-list li").count()) === successes ? true : undefined), 10_000);
  await page.selectOption("#filter-outcome", "failure");
  await waitFor(
    "the failure filter",
    async () => ((await page.locator("#episode-list li").count()) === file.episodes.length - successes ? true : undefined),
    10_000,
  );
  await page.selectOption("#filter-outcome", "all");

  // A curve-table row opens its update too.
  await page.click("#curve-details summary");
  await page.click('#curve-table tbody tr[data-update="3"]');
  await waitFor("update 3's episodes", async () => ((await page.inputValue("#inspect-update")) === "3" ? true : undefined), 10_000);
  await page.waitForSelector("#steps-table .step-row");

  // The README's picture is refreshed on request only, so that a test run never edits the checkout.
  const shot = process.env.STEPPO_UPDATE_DOCS === "1" ? join(ROOT, "docs", "dashboard.png") : join(dir, "dashboard.png");
  await page.evaluate(() => (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0));
  await page.screenshot({ path: shot, fullPage: true });
  assert.ok(readFileSync(shot).subarray(1, 4).toString() === "PNG", `${shot} is a PNG`);
});

test("steppo ui overlays several runs and says what is wrong with bad ones, never a blank page", { timeout: 120_000 }, async () => {
  // A run still training (no summary yet), a truncated summary without a curve, a missing directory, a bench result.
  const running = join(dir, "running");
  cpSync(runDir, running, { recursive: true });
  rmSync(join(running, "summary.json"));
  writeFileSync(join(running, "episodes", "update-000002.json"), readFileSync(join(runDir, "episodes", "update-000002.json"), "utf8").slice(0, 200));
  const truncated = join(dir, "truncated");
  mkdirSync(truncated);
  writeFileSync(join(truncated, "summary.json"), readFileSync(join(runDir, "summary.json"), "utf8").slice(0, 120));
  const bench = join(dir, "algos.json");
  const curve = [
    { update: 0, envSteps: 0, trainSuccess: null, testSuccess: 0.2 },
    { update: 1, envSteps: 50, trainSuccess: 0.3, testSuccess: 0.4 },
  ];
  writeFileSync(
    bench,
    JSON.stringify({ benchmark: "algos", runs: [{ kind: "train", family: "multihop-qa", row: "steppo", seed: 1, test: 0.4, ood: {}, curve }] }),
  );
  const missing = join(dir, "no-such-run");

  const url = await startUi([runDir, running, truncated, missing, bench]);
  await page.goto(url);
  await page.waitForSelector('[data-run="4.0"]');
  assert.equal(await page.getAttribute('[data-run="1"]', "data-state"), "running");
  assert.match((await page.textContent('[data-run="1"] .note')) ?? "", /no summary\.json yet/);
  assert.equal(await page.getAttribute('[data-run="2"]', "data-state"), "broken");
  assert.match((await page.textContent('[data-run="2"] .problem')) ?? "", /summary\.json is not valid JSON .*truncated/);
  assert.match((await page.textContent('[data-run="3"] .problem')) ?? "", /no-such-run does not exist/);
  assert.match((await page.textContent('[data-run="4.0"]')) ?? "", /multihop-qa · steppo · seed 1/);

  // The first four runs with a curve are overlaid: the finished run, the running copy and the bench training.
  const legend = await page.locator('figure[data-metric="success"] .u-legend .u-series').allTextContents();
  for (const line of ["dash: test", "running: test", "multihop-qa · steppo · seed 1: test"]) {
    assert.ok(
      legend.some((l) => l.includes(line)),
      `${line} in the legend: ${legend.join(" | ")}`,
    );
  }
  const xs = new Set([...parseCurveCsv(readFileSync(join(runDir, "curve.csv"), "utf8")).points.map((p) => p.envSteps), ...curve.map((p) => p.envSteps)]);
  assert.equal(await page.getAttribute('figure[data-metric="success"]', "data-points"), String(xs.size), "one x axis: the union of the runs' env steps");

  // A truncated episode file: a message where the episodes would be.
  await page.selectOption("#inspect-run", "1");
  await page.selectOption("#inspect-update", "2");
  await waitFor("the episode file's problem", async () => ((await page.getAttribute("#episodes-message", "class")) === "problem" ? true : undefined), 10_000);
  assert.match((await page.textContent("#episodes-message")) ?? "", /not valid JSON/);
  assert.ok(((await page.textContent("body")) ?? "").trim().length > 0);
});

test("steppo ui refuses to start without a run directory", () => {
  const r = spawnSync(process.execPath, [BIN, "ui"], { encoding: "utf8", timeout: 30_000 });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /ui takes one or more run directories/);
});
