// The pure parts of `npm run bench:algos`: row definitions and the jobs they make, aggregation over
// seeds, curve averaging, the Markdown table and the command-line flags. The benchmark itself is run,
// never asserted, here.
import assert from "node:assert/strict";
import { test } from "node:test";
import { settingsFromArgs } from "../../bench/algos.ts";
import { aggregateRuns, aggregateWarmStarts, interpolate, meanCurve, meanStd, stepGrid } from "../../bench/algos/aggregate.ts";
import { type AlgosPart, assembleParts } from "../../bench/algos/assemble.ts";
import { familyTable, formatPaired, formatStat, pairedTable } from "../../bench/algos/markdown.ts";
import { defaultPairs, pairedDiffs, pairedInterval, t95 } from "../../bench/algos/paired.ts";
import type { CurveSample, TrainResult, WarmStartResult } from "../../bench/algos/results.ts";
import { groupSizeFor, ROWS, selectRows } from "../../bench/algos/rows.ts";
import { DEFAULT_SETTINGS, FAMILY_NAMES, type Family, jobFor, QUICK_SETTINGS } from "../../bench/algos/settings.ts";
import { planTasks } from "../../bench/algos/tasks.ts";
import { getEstimator } from "../../learner/estimators/registry.ts";
import { warmStartKey } from "../../learner/warm-start.ts";
import { trainRun } from "../support/algos-runs.ts";

const run = trainRun;

test("rows: StepPO, the 2 × 2 ablation and PPO as named, the critic-free baselines with the token ratio", () => {
  const pairs = Object.fromEntries(ROWS.map((r) => [r.id, `${r.estimator}+${r.ratio}`]));
  assert.deepEqual(pairs, {
    steppo: "step-gae+step",
    "step-gae-token-ratio": "step-gae+token",
    "token-gae-step-ratio": "token-gae+step",
    ppo: "token-gae+token",
    "ppo-paper": "token-gae+token",
    "steppo-clip02": "step-gae+step",
    grpo: "grpo+token",
    gigpo: "gigpo+token",
    rloo: "rloo+token",
  });
  assert.equal(new Set(ROWS.map((r) => r.id)).size, ROWS.length);
  for (const r of ROWS) assert.ok(r.ratioSource.length > 0, `${r.id} says why its ratio mode`);
});

test("rows: grouped estimators get G > 1, the others G = 1, and every row the same episodes per update", () => {
  for (const settings of [DEFAULT_SETTINGS, QUICK_SETTINGS]) {
    for (const row of ROWS) {
      const g = groupSizeFor(row, settings.groupSize);
      assert.equal(g > 1, getEstimator(row.estimator).grouped, `${row.id}: G = ${g}`);
      const job = jobFor(settings, "textworld", row, 2);
      assert.equal(job.spec.rollout.groupSize, g);
      assert.equal(job.spec.rollout.episodesPerUpdate, settings.episodesPerUpdate);
    }
  }
  assert.deepEqual(
    ROWS.filter((r) => groupSizeFor(r, 4) > 1).map((r) => r.id),
    ["grpo", "gigpo", "rloo"],
  );
});

test("jobs of one (family, seed) differ only in estimator, ratio, group size and the row's own γ/λ/clip, and share one warm start", () => {
  for (const family of FAMILY_NAMES) {
    const jobs = ROWS.map((row) => jobFor(DEFAULT_SETTINGS, family, row, 3));
    const strip = (j: (typeof jobs)[number]) => {
      const spec = structuredClone(j.spec);
      delete (spec.algorithm as Partial<typeof spec.algorithm>).estimator;
      delete (spec.algorithm as Partial<typeof spec.algorithm>).ratio;
      delete (spec.rollout as Partial<typeof spec.rollout>).groupSize;
      for (const k of ["gamma", "lambda", "clip"] as const) delete (spec.algorithm as Partial<typeof spec.algorithm>)[k];
      return spec;
    };
    for (const j of jobs.slice(1)) {
      assert.deepEqual(strip(j), strip(jobs[0]));
      assert.deepEqual(warmStartKey(j.spec), warmStartKey(jobs[0].spec));
    }
    assert.equal(jobs[0].spec.seed, 3);
    // A family is an environment in one setting: multihop-qa-long is multihop-qa with long chains.
    assert.equal(jobs[0].spec.environment.name, family === "multihop-qa-long" ? "multihop-qa" : family);
  }
  // Another seed is another warm start.
  assert.notDeepEqual(
    warmStartKey(jobFor(DEFAULT_SETTINGS, "multihop-qa", ROWS[0], 1).spec),
    warmStartKey(jobFor(DEFAULT_SETTINGS, "multihop-qa", ROWS[0], 2).spec),
  );
});

test("multihop-qa-long: the short family's knowledge base with long chains and written-out reasoning, room for 7-step plans and 48-token steps", () => {
  const short = jobFor(DEFAULT_SETTINGS, "multihop-qa", ROWS[0], 1).spec.environment;
  const long = jobFor(DEFAULT_SETTINGS, "multihop-qa-long", ROWS[0], 1).spec.environment;
  assert.deepEqual(long.config, { ...short.config, longChains: 1, verboseReasoning: 1, maxContextWords: 78 });
  assert.ok(long.maxSteps >= 7 && long.maxStepTokens >= 39, `${long.maxSteps} steps of ${long.maxStepTokens} tokens`);
  // The context left to the tiny model (128 tokens) holds the longest context, 52 words, and <bos>.
  assert.ok(128 - long.maxStepTokens >= 53);
});

test("selectRows keeps benchmark order and names unknown rows", () => {
  assert.deepEqual(
    selectRows(["rloo", "steppo"]).map((r) => r.id),
    ["steppo", "rloo"],
  );
  assert.equal(selectRows(undefined).length, ROWS.length);
  assert.throws(() => selectRows(["steppo", "ppo2"]), /unknown row\(s\) ppo2; known: steppo, /);
});

test("meanStd: mean and sample standard deviation (n − 1); no spread from one value", () => {
  const s = meanStd([0.2, 0.4, 0.6, 0.8]);
  assert.equal(s.n, 4);
  assert.ok(Math.abs(s.mean - 0.5) < 1e-12);
  assert.ok(Math.abs((s.std ?? 0) - Math.sqrt(0.2 / 3)) < 1e-12, `std ${s.std}`);
  assert.deepEqual(meanStd([0.48]), { mean: 0.48, std: null, n: 1 });
  assert.equal(meanStd([]).n, 0);
  assert.equal(meanStd([0.3, 0.3, 0.3]).std, 0);
});

test("aggregateRuns: one cell per (family, row) in the given order, seeds sorted, OOD families separately", () => {
  const runs = [
    run("grpo", 2, 0.3, { comparison: 0.1, compositional: 0 }, { groupSize: 4 }),
    run("steppo", 3, 0.6, { comparison: 0.2, compositional: 0.1 }),
    run("steppo", 1, 0.4, { comparison: 0.0, compositional: 0.1 }),
    run("grpo", 1, 0.5, { comparison: 0.3, compositional: 0 }, { groupSize: 4 }),
    run("steppo", 2, 0.5, { comparison: 0.1, compositional: 0.1 }),
    run("ppo", 1, 0.9, {}, { family: "textworld" }),
  ];
  const cells = aggregateRuns(runs, ["multihop-qa", "textworld"], ["steppo", "ppo", "grpo"]);
  assert.deepEqual(
    cells.map((c) => `${c.family}/${c.row}`),
    ["multihop-qa/steppo", "multihop-qa/grpo", "textworld/ppo"],
  );
  const steppo = cells[0];
  assert.deepEqual(steppo.seeds, [1, 2, 3]);
  assert.ok(Math.abs(steppo.test.mean - 0.5) < 1e-12);
  assert.ok(Math.abs((steppo.test.std ?? 0) - 0.1) < 1e-12);
  assert.ok(Math.abs(steppo.ood.comparison.mean - 0.1) < 1e-12);
  assert.ok((steppo.ood.compositional.std ?? 1) < 1e-12);
  assert.equal(steppo.envSteps.mean, 1002);
  assert.equal(cells[1].groupSize, 4);
  assert.ok(Math.abs(cells[1].test.mean - 0.4) < 1e-12);
  assert.equal(cells[2].test.std, null);

  const warm: WarmStartResult[] = [1, 2].map((seed) => ({
    kind: "warm-start",
    family: "multihop-qa",
    seed,
    initial: { train: 0.2, test: 0.4 + seed / 10, comparison: 0 },
    wallSeconds: 100,
    cpuSeconds: 90,
  }));
  const [w] = aggregateWarmStarts(warm, ["multihop-qa", "textworld"]);
  assert.equal(aggregateWarmStarts(warm, ["multihop-qa", "textworld"]).length, 1);
  assert.ok(Math.abs(w.initial.test.mean - 0.55) < 1e-12);
  assert.deepEqual(Object.keys(w.initial), ["train", "test", "comparison"]);
});

test("curves: runs evaluated at different step counts are interpolated onto one grid, then averaged", () => {
  assert.deepEqual(stepGrid(1000, 4), [0, 250, 500, 750, 1000]);
  const pts: [number, number][] = [
    [0, 0.2],
    [100, 0.4],
    [300, 0.0],
  ];
  assert.equal(interpolate(pts, 0), 0.2);
  assert.ok(Math.abs(interpolate(pts, 50) - 0.3) < 1e-12);
  assert.ok(Math.abs(interpolate(pts, 200) - 0.2) < 1e-12);
  assert.equal(interpolate(pts, 999), 0.0);
  const point = (envSteps: number, testSuccess: number | null, trainSuccess: number | null = null): CurveSample => ({
    update: 0,
    envSteps,
    testSuccess,
    trainSuccess,
  });
  const a = [point(0, 0.4), point(110, null, 0.5), point(220, 0.6, 0.7)];
  const b = [point(0, 0.2), point(90, null, 0.1), point(180, 0.2, 0.3), point(270, 0.5, 0.3)];
  const mean = meanCurve([a, b], "testSuccess", [0, 180]);
  assert.deepEqual(mean[0], [0, (0.4 + 0.2) / 2]);
  assert.ok(Math.abs(mean[1][1] - (0.4 + (0.2 * 180) / 220 + 0.2) / 2) < 1e-12);
  assert.deepEqual(meanCurve([[point(0, null)]], "trainSuccess", [0]), []);
});

test("familyTable: warm start first, rows in order with mean ± std, one column per OOD family, missing rows skipped", () => {
  const runs = [1, 2, 3].flatMap((seed) => [
    run("steppo", seed, 0.4 + seed / 10, { comparison: 0.1, compositional: 0 }),
    run("rloo", seed, 0.3, { comparison: 0, compositional: 0 }, { groupSize: 4 }),
  ]);
  const rows = selectRows(["steppo", "ppo", "rloo"]);
  const warm = aggregateWarmStarts(
    [1, 2, 3].map((seed) => ({
      kind: "warm-start",
      family: "multihop-qa",
      seed,
      initial: { train: 0.3, test: 0.45, comparison: 0, compositional: 0 },
      wallSeconds: 90,
      cpuSeconds: 80,
    })),
    ["multihop-qa"],
  )[0];
  const md = familyTable({
    family: "multihop-qa",
    oodNames: ["comparison", "compositional"],
    warmStart: warm,
    rows,
    aggregates: aggregateRuns(runs, ["multihop-qa"], ["steppo", "ppo", "rloo"]),
  });
  const lines = md.split("\n");
  assert.equal(
    lines[0],
    "| row | estimator | ratio | G | test (in-domain) | OOD comparison | OOD compositional | train (sampled) | env steps | updates | wall s |",
  );
  assert.equal(lines.length, 5, md); // header, rule, warm start, steppo, rloo (ppo did not run)
  assert.match(lines[2], /^\| warm start \(no RL\) \| – \| – \| – \| 0\.45 ± 0\.00 \| 0\.00 ± 0\.00 \| 0\.00 ± 0\.00 \| 0\.30 ± 0\.00 \| 0 \| 0 \| 90 ± 0 \|$/);
  assert.equal(
    lines[3],
    "| StepPO (step-gae + step ratio) | step-gae | step | 1 | 0.60 ± 0.10 | 0.10 ± 0.00 | 0.00 ± 0.00 | 0.60 ± 0.10 | 1002 ± 1 | 10.0 ± 0.0 | 60 ± 0 |",
  );
  assert.match(lines[4], /^\| RLOO \| rloo \| token \| 4 \| 0\.30 ± 0\.00 \|/);
  assert.equal(formatStat(meanStd([0.48])), "0.48");
  assert.equal(formatStat(undefined), "–");
});

test("planTasks: every warm start before the trainings that need it", () => {
  const s = { ...DEFAULT_SETTINGS, families: ["multihop-qa", "textworld"] as ("multihop-qa" | "textworld")[], seeds: [1, 2] };
  const tasks = planTasks(s, ["steppo", "grpo"]);
  assert.equal(tasks.length, 2 * 2 + 2 * 2 * 2);
  tasks.forEach((t, i) => {
    if (t.kind !== "train") return;
    const w = tasks.findIndex((x) => x.kind === "warm-start" && x.family === t.family && x.seed === t.seed);
    assert.ok(w >= 0 && w < i, `${t.row} ${t.family} ${t.seed}`);
  });
});

test("flags: --quick, --families, --rows, --seeds, --jobs; bad values are refused by name", () => {
  const d = settingsFromArgs([]);
  assert.equal(d.mode, "default");
  assert.deepEqual(d.families, [...FAMILY_NAMES]);
  assert.deepEqual(
    d.rows,
    ROWS.map((r) => r.id),
  );
  assert.deepEqual(d.seeds, [1, 2, 3]);
  const q = settingsFromArgs(["algos", "--quick", "--families", "textworld,multihop-qa", "--rows", "ppo,steppo", "--seeds", "4,5", "--jobs", "1"]);
  assert.equal(q.mode, "quick");
  assert.deepEqual(q.families, ["textworld", "multihop-qa"]);
  assert.deepEqual(q.rows, ["steppo", "ppo"]);
  assert.deepEqual(q.seeds, [4, 5]);
  assert.equal(q.jobs, 1);
  assert.throws(() => settingsFromArgs(["--families", "alfworld"]), /--families: unknown alfworld/);
  assert.throws(() => settingsFromArgs(["--seeds", "1,x"]), /--seeds: expected non-negative integers, got "x"/);
  assert.throws(() => settingsFromArgs(["--jobs", "0"]), /--jobs: expected a positive integer/);
  assert.throws(() => settingsFromArgs(["--rows", "ppo2"]), /unknown row/);
});

test("rows with a paper's settings run them: ppo-paper γ 0.99 λ 1, steppo-clip0.2 clip 0.2", () => {
  const by = (id: string) => jobFor(DEFAULT_SETTINGS, "multihop-qa", selectRows([id])[0], 1).spec.algorithm;
  assert.equal(by("ppo-paper").gamma, 0.99);
  assert.equal(by("ppo-paper").lambda, 1);
  assert.equal(by("steppo-clip02").clip, 0.2);
  assert.equal(by("ppo").gamma, undefined, "the RLHF row keeps the estimator's defaults");
});

test("paired intervals: the mean difference with a 95% Student-t interval, per family, seeds matched", () => {
  assert.equal(t95(1), 12.706);
  assert.equal(t95(4), 2.776);
  assert.equal(t95(100), 1.96);
  assert.throws(() => t95(0), /positive integer/);
  const i = pairedInterval([0.1, 0.2, 0.3]);
  // mean 0.2, sd 0.1, half-width 4.303 · 0.1 / √3
  assert.ok(Math.abs(i.mean - 0.2) < 1e-12);
  assert.ok(Math.abs((i.high as number) - (0.2 + (4.303 * 0.1) / Math.sqrt(3))) < 1e-9);
  assert.deepEqual(pairedInterval([0.5]), { mean: 0.5, low: null, high: null });

  const run = (row: string, seed: number, test: number) => ({ kind: "train", family: "f", row, seed, test }) as unknown as TrainResult;
  const warm = (seed: number, test: number) => ({ kind: "warm-start", family: "f", seed, initial: { test } }) as unknown as WarmStartResult;
  const runs = [run("steppo", 1, 0.6), run("steppo", 2, 0.5), run("steppo", 3, 0.7), run("ppo", 1, 0.5), run("ppo", 3, 0.6)];
  const diffs = pairedDiffs(runs, [warm(1, 0.4), warm(2, 0.45), warm(3, 0.5)], ["f", "g"], defaultPairs(["steppo", "ppo"]));
  assert.deepEqual(
    diffs.map((d) => [d.label, d.seeds]),
    [
      ["steppo − warm-start", [1, 2, 3]],
      ["ppo − warm-start", [1, 3]],
      ["steppo − ppo", [1, 3]],
    ],
    "seed 2 has no ppo run: it drops out of the pairs with ppo only; family g has no runs",
  );
  const sVsPpo = diffs[2];
  assert.ok(sVsPpo.diffs.every((d) => Math.abs(d - 0.1) < 1e-12));
  assert.equal(formatPaired(sVsPpo), "+0.100 [+0.100, +0.100]");
  // steppo − warm start per seed: 0.20, 0.05, 0.20 → mean 0.15, an interval wide enough to span 0.
  assert.match(pairedTable(diffs), /\| steppo − warm-start \| \+0\.150 \[−0\.065, \+0\.365\] \| 3 \| spans 0 \(null\) \| 0\.20, 0\.05, 0\.20 \|/);
  assert.match(pairedTable(diffs), /\| steppo − ppo \| .* \| 2 \| above 0 \|/);
});

test("assembled report: each family from the newest part that ran it, each part with its own settings", () => {
  const run = (family: string, row: string, seed: number, test: number) =>
    ({
      kind: "train",
      family,
      row,
      seed,
      test,
      ood: {},
      train: 0,
      envSteps: 0,
      updates: 0,
      wallSeconds: 0,
      cpuSeconds: 0,
      curve: [],
      groupSize: 1,
    }) as unknown as TrainResult;
  const warm = (family: string, seed: number, test: number) =>
    ({ kind: "warm-start", family, seed, initial: { test, train: 0 }, wallSeconds: 0, cpuSeconds: 0 }) as unknown as WarmStartResult;
  const part = (date: string, families: Family[], test: number): AlgosPart => ({
    date,
    node: "v20",
    cpus: 2,
    totalWallSeconds: 60,
    settings: { ...DEFAULT_SETTINGS, families, seeds: [1, 2], rows: ["steppo"] },
    rows: selectRows(["steppo"]),
    warmStarts: families.flatMap((f) => [warm(f, 1, 0.1), warm(f, 2, 0.2)]),
    runs: families.flatMap((f) => [run(f, "steppo", 1, test), run(f, "steppo", 2, test)]),
  });
  const old = part("2026-11-30T00:00:00Z", ["multihop-qa", "paper-search"], 0.3);
  const newer = part("2026-12-01T00:00:00Z", ["multihop-qa"], 0.9);
  const { json, markdown } = assembleParts([newer, old], { "multihop-qa": "m.svg", "paper-search": "p.svg" });
  assert.deepEqual(
    json.runs.map((r) => [r.family, r.test]),
    [
      ["paper-search", 0.3],
      ["paper-search", 0.3],
      ["multihop-qa", 0.9],
      ["multihop-qa", 0.9],
    ],
  );
  assert.deepEqual(
    json.parts.map((p) => p.families),
    [["paper-search"], ["multihop-qa"]],
  );
  assert.deepEqual(
    json.paired.map((d) => [d.family, d.label, d.mean.toFixed(2)]),
    [
      ["paper-search", "steppo − warm-start", "0.15"],
      ["multihop-qa", "steppo − warm-start", "0.75"],
    ],
  );
  assert.match(markdown, /^# Algorithms benchmark\n/);
  assert.equal((markdown.match(/^### multihop-qa$/gm) ?? []).length, 1, "one section per family");
  assert.equal((markdown.match(/^### paper-search$/gm) ?? []).length, 1);
});
