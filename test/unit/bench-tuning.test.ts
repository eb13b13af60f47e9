// The tuning protocol of `npm run bench -- algos --tune` (bench/algos/tuning.ts): the grid each row gets,
// the choice by validation (ties, gaps), the two phases of tasks, the flags, and the report assembled from
// a tuned part next to an old, untuned one. The benchmark itself is run, never asserted, here.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { partPath, settingsFromArgs } from "../../bench/algos.ts";
import { type AlgosPart, assembleParts } from "../../bench/algos/assemble.ts";
import { tuningParagraph, tuningTable } from "../../bench/algos/markdown.ts";
import type { TrainResult, WarmStartResult } from "../../bench/algos/results.ts";
import { selectRows } from "../../bench/algos/rows.ts";
import { DEFAULT_SETTINGS, type Family, jobFor } from "../../bench/algos/settings.ts";
import { planFinalTasks, planTuningTasks } from "../../bench/algos/tasks.ts";
import { chooseConfigs, configsFor, DEFAULT_TUNE_GRID, defaultClip, reuseChoices, type TuneConfig, type TuneGrid } from "../../bench/algos/tuning.ts";

const GRID: TuneGrid = { ...DEFAULT_TUNE_GRID, seeds: [101, 102] };
const [steppo, ppo, grpo] = selectRows(["steppo", "ppo", "grpo"]);

function run(family: string, row: string, seed: number, scores: { validation?: number; test: number }, config?: TuneConfig): TrainResult {
  return {
    kind: "train",
    family,
    row,
    seed,
    estimator: "step-gae",
    ratio: "step",
    clip: config?.clip ?? 0.05,
    learningRate: config?.learningRate ?? 3e-4,
    gamma: 1,
    lambda: 1,
    groupSize: 1,
    episodesPerUpdate: 32,
    updates: 10,
    envSteps: 1000,
    train: 0,
    ...scores,
    ...(config ? { config } : {}),
    ood: {},
    wallSeconds: 1,
    cpuSeconds: 1,
    curve: [],
  };
}

/** Tuning runs of `row` on multihop-qa: validation per config id and seed. */
function grid(row: (typeof steppo)["id"], validation: Record<string, [number, number]>): TrainResult[] {
  const r = selectRows([row])[0];
  return configsFor(r, GRID).flatMap((c) => GRID.seeds.map((seed, i) => run("multihop-qa", row, seed, { validation: validation[c.id][i], test: 0.99 }, c)));
}

test("tuning grid: the same 2 × 2 for every row, learning rate × a multiple of the row's own default clip, the default first", () => {
  assert.deepEqual(
    configsFor(steppo, GRID).map((c) => [c.id, c.learningRate, c.clip]),
    [
      ["lr0.0003-clip1x", 3e-4, 0.05],
      ["lr0.0003-clip2x", 3e-4, 0.1],
      ["lr0.0001-clip1x", 1e-4, 0.05],
      ["lr0.0001-clip2x", 1e-4, 0.1],
    ],
  );
  for (const row of [ppo, grpo]) {
    assert.deepEqual(
      configsFor(row, GRID).map((c) => c.clip),
      [0.2, 0.4, 0.2, 0.4],
      row.id,
    );
  }
  // A row with a clip of its own scales that one.
  assert.deepEqual(
    configsFor(selectRows(["steppo-clip02"])[0], GRID).map((c) => c.clip),
    [0.2, 0.4, 0.2, 0.4],
  );
  assert.equal(defaultClip(steppo), 0.05);
  // The first config is the untuned job: the default learning rate and the clip the registry would resolve.
  const first = configsFor(ppo, GRID)[0];
  assert.deepEqual(jobFor(DEFAULT_SETTINGS, "multihop-qa", ppo, 1, first).spec.algorithm, {
    ...jobFor(DEFAULT_SETTINGS, "multihop-qa", ppo, 1).spec.algorithm,
    clip: 0.2,
  });
  const tuned = jobFor(DEFAULT_SETTINGS, "multihop-qa", ppo, 1, configsFor(ppo, GRID)[3]);
  assert.deepEqual([tuned.spec.algorithm.learningRate, tuned.spec.algorithm.clip], [1e-4, 0.4]);
  assert.equal(tuned.metadata.name, "algos-multihop-qa-ppo-g3-s1");
  // The longest row and family still make a valid job name (parseJob checks it).
  for (const row of selectRows(undefined)) for (const c of configsFor(row, GRID)) jobFor(DEFAULT_SETTINGS, "paper-search", row, 102, c);
});

test("chooseConfigs: each row's config by mean validation success (never test); ties go to the earlier config in grid order", () => {
  const tuning = [
    // steppo: the last config is best on validation, though the first has the better (ignored) test score.
    ...grid("steppo", { "lr0.0003-clip1x": [0.5, 0.5], "lr0.0003-clip2x": [0.4, 0.6], "lr0.0001-clip1x": [0.3, 0.3], "lr0.0001-clip2x": [0.6, 0.6] }),
    // ppo: a three-way tie at the top; the earliest in grid order wins, whatever the runs' order.
    ...grid("ppo", { "lr0.0003-clip1x": [0.2, 0.2], "lr0.0003-clip2x": [0.3, 0.1], "lr0.0001-clip1x": [0.1, 0.3], "lr0.0001-clip2x": [0.0, 0.1] }).reverse(),
  ];
  const choices = chooseConfigs(tuning, ["multihop-qa"], [steppo, ppo], GRID);
  assert.deepEqual(
    choices.map((c) => [c.row, c.chosen.id]),
    [
      ["steppo", "lr0.0001-clip2x"],
      ["ppo", "lr0.0003-clip1x"],
    ],
  );
  const s = choices[0].scores;
  assert.deepEqual(
    s.map((x) => x.config.id),
    configsFor(steppo, GRID).map((c) => c.id),
    "every config, in grid order",
  );
  assert.deepEqual(s[1].seeds, [101, 102]);
  assert.deepEqual(s[1].validation, [0.4, 0.6]);
  assert.ok(Math.abs(s[1].mean - 0.5) < 1e-12);
  // Deterministic: the same runs in any order give the same choice.
  assert.deepEqual(chooseConfigs([...tuning].reverse(), ["multihop-qa"], [steppo, ppo], GRID), choices);
  // A test-only difference never moves the choice.
  const testFlipped = tuning.map((r) => ({ ...r, test: r.config?.id === "lr0.0003-clip1x" ? 1 : 0 }));
  assert.deepEqual(
    chooseConfigs(testFlipped, ["multihop-qa"], [steppo, ppo], GRID).map((c) => c.chosen.id),
    choices.map((c) => c.chosen.id),
  );
});

test("chooseConfigs: a grid point without runs, or a run without a validation score, is an error, not a choice over part of the grid", () => {
  const full = grid("steppo", { "lr0.0003-clip1x": [0.5, 0.5], "lr0.0003-clip2x": [0.4, 0.6], "lr0.0001-clip1x": [0.3, 0.3], "lr0.0001-clip2x": [0.6, 0.6] });
  assert.throws(() => chooseConfigs(full.slice(2), ["multihop-qa"], [steppo], GRID), /no tuning run of steppo on multihop-qa with lr0\.0003-clip1x/);
  const { validation: _v, ...noValidation } = full[0];
  assert.throws(
    () => chooseConfigs([noValidation as TrainResult, ...full.slice(1)], ["multihop-qa"], [steppo], GRID),
    /seed 101 \(lr0\.0003-clip1x\) has no validation score/,
  );
});

test("tuned tasks: warm starts of tuning and final seeds first, the whole grid on the tuning seeds; then the final seeds with the chosen config", () => {
  const settings = { ...DEFAULT_SETTINGS, families: ["multihop-qa"] as Family[], seeds: [1, 2, 3, 4, 5], tune: GRID };
  const first = planTuningTasks(settings, ["steppo", "ppo"]);
  assert.deepEqual(
    first.filter((t) => t.kind === "warm-start").map((t) => t.seed),
    [101, 102, 1, 2, 3, 4, 5],
  );
  const trainings = first.filter((t) => t.kind === "train");
  assert.equal(trainings.length, 2 * 4 * 2);
  assert.ok(first.findIndex((t) => t.kind === "train") > first.findLastIndex((t) => t.kind === "warm-start"));
  for (const t of trainings) assert.ok(t.kind === "train" && t.tuning && GRID.seeds.includes(t.seed) && t.config);
  const chosen = configsFor(ppo, GRID)[2];
  const final = planFinalTasks(settings, [
    { family: "multihop-qa", row: "steppo", chosen: configsFor(steppo, GRID)[0], scores: [] },
    { family: "multihop-qa", row: "ppo", chosen, scores: [] },
  ]);
  assert.equal(final.length, 5 * 2);
  for (const t of final) assert.ok(t.kind === "train" && !t.tuning && settings.seeds.includes(t.seed));
  assert.deepEqual(
    final.filter((t) => t.kind === "train" && t.row === "ppo").map((t) => t.kind === "train" && t.config?.id),
    Array(5).fill(chosen.id),
  );
  assert.throws(() => planTuningTasks(DEFAULT_SETTINGS, ["steppo"]), /no tuning grid/);
});

test("flags: --tune takes final seeds 1–5 and tuning seeds 101, 102 unless told; tuning seeds must not be final seeds", () => {
  const t = settingsFromArgs(["algos", "--tune", "--families", "multihop-qa", "--rows", "steppo,ppo,grpo"]);
  assert.deepEqual(t.seeds, [1, 2, 3, 4, 5]);
  assert.deepEqual(t.tune, DEFAULT_TUNE_GRID);
  assert.deepEqual(t.rows, ["steppo", "ppo", "grpo"]);
  const q = settingsFromArgs(["--quick", "--tune", "--seeds", "1", "--tuning-seeds", "7"]);
  assert.deepEqual([q.mode, q.seeds, q.tune?.seeds], ["quick", [1], [7]]);
  assert.equal(settingsFromArgs([]).tune, undefined, "untuned unless asked");
  assert.throws(() => settingsFromArgs(["--tune", "--seeds", "1,101"]), /--tuning-seeds: 101 also final seed\(s\)/);
  assert.throws(() => settingsFromArgs(["--tuning-seeds", "7"]), /--tuning-seeds: only with --tune/);
  assert.throws(() => settingsFromArgs(["--tune", "--tuning-seeds", "a"]), /--tuning-seeds: expected non-negative integers, got "a"/);
});

test("flags: --learning-rates and --clip-factors replace the grid's points for every row, only with --tune", () => {
  const t = settingsFromArgs(["--tune", "--families", "multihop-qa-long", "--rows", "steppo,ppo", "--learning-rates", "1e-4,3e-5", "--clip-factors", "1"]);
  assert.deepEqual(t.tune, { learningRates: [1e-4, 3e-5], clipFactors: [1], seeds: [101, 102] });
  assert.deepEqual(
    configsFor(steppo, t.tune).map((c) => [c.id, c.index, c.learningRate, c.clip]),
    [
      ["lr0.0001-clip1x", 0, 1e-4, 0.05],
      ["lr0.00003-clip1x", 1, 3e-5, 0.05],
    ],
  );
  assert.deepEqual(
    settingsFromArgs(["--tune", "--clip-factors", "1"]).tune?.learningRates,
    DEFAULT_TUNE_GRID.learningRates,
    "the other axis keeps its default",
  );
  assert.throws(() => settingsFromArgs(["--learning-rates", "1e-4"]), /--learning-rates: only with --tune/);
  assert.throws(() => settingsFromArgs(["--clip-factors", "1"]), /--clip-factors: only with --tune/);
  assert.throws(() => settingsFromArgs(["--tune", "--learning-rates", "0"]), /--learning-rates: expected positive numbers, got "0"/);
  assert.throws(() => settingsFromArgs(["--tune", "--clip-factors", "x"]), /--clip-factors: expected positive numbers, got "x"/);
  assert.throws(() => settingsFromArgs(["--tune", "--learning-rates", "1e-4,0.0001"]), /--learning-rates: a value is listed twice/);
  const p = tuningParagraph(
    t,
    chooseConfigs(
      configsFor(steppo, t.tune).flatMap((c) => [101, 102].map((seed) => run("multihop-qa-long", "steppo", seed, { validation: 0.5, test: 0 }, c))),
      ["multihop-qa-long"],
      [steppo],
      t.tune,
    ),
  );
  assert.match(p, /2-point grid — learning rate 0\.0001, 0\.00003 × clip ×1/);
  assert.match(p, /the first being lr 0\.0001, clip ×1\)/);
});

test("assembled report: a tuned part shows its grid, tuning seeds, choices and validation scores; an old part without them reads untuned", () => {
  const warm = (family: string, seed: number, test: number): WarmStartResult => ({
    kind: "warm-start",
    family,
    seed,
    initial: { test, train: 0 },
    wallSeconds: 0,
    cpuSeconds: 0,
  });
  // Written before validation existed: no validation, no config, no learningRate, no tuning fields.
  const oldRun = (seed: number) => {
    const { learningRate: _l, ...r } = run("paper-search", "steppo", seed, { test: 0.3 });
    return r as TrainResult;
  };
  const old: AlgosPart = {
    date: "2026-11-30T00:00:00Z",
    node: "v20",
    cpus: 2,
    totalWallSeconds: 60,
    settings: { ...DEFAULT_SETTINGS, families: ["paper-search"], seeds: [1, 2], rows: ["steppo"] },
    rows: selectRows(["steppo"]),
    warmStarts: [warm("paper-search", 1, 0.1), warm("paper-search", 2, 0.2)],
    runs: [oldRun(1), oldRun(2)],
  };
  const tuning = [
    ...grid("steppo", { "lr0.0003-clip1x": [0.5, 0.5], "lr0.0003-clip2x": [0.4, 0.6], "lr0.0001-clip1x": [0.3, 0.3], "lr0.0001-clip2x": [0.6, 0.6] }),
    ...grid("ppo", { "lr0.0003-clip1x": [0.2, 0.2], "lr0.0003-clip2x": [0.3, 0.1], "lr0.0001-clip1x": [0.1, 0.3], "lr0.0001-clip2x": [0.0, 0.1] }),
  ];
  const choices = chooseConfigs(tuning, ["multihop-qa"], [steppo, ppo], GRID);
  const seeds = [1, 2, 3, 4, 5];
  const finalRun = (row: string, seed: number, test: number) =>
    run("multihop-qa", row, seed, { validation: 0.5, test }, choices.find((c) => c.row === row)?.chosen);
  const tuned: AlgosPart = {
    date: "2026-12-01T00:00:00Z",
    node: "v20",
    cpus: 2,
    totalWallSeconds: 600,
    settings: { ...DEFAULT_SETTINGS, families: ["multihop-qa"], seeds, rows: ["steppo", "ppo"], tune: GRID },
    rows: [steppo, ppo],
    warmStarts: seeds.map((s) => warm("multihop-qa", s, 0.2)),
    runs: seeds.flatMap((s) => [finalRun("steppo", s, 0.4 + s / 100), finalRun("ppo", s, 0.3)]),
    tuning,
    tuningWarmStarts: GRID.seeds.map((s) => warm("multihop-qa", s, 0.2)),
    choices,
  };
  const { json, markdown } = assembleParts([tuned, old], { "multihop-qa": "m.svg", "paper-search": "p.svg" });
  assert.equal(json.tuning.length, 16);
  assert.deepEqual(
    json.choices.map((c) => [c.row, c.chosen.id]),
    [
      ["steppo", "lr0.0001-clip2x"],
      ["ppo", "lr0.0003-clip1x"],
    ],
  );
  assert.deepEqual(
    json.tuningWarmStarts.map((w) => w.seed),
    [101, 102],
  );
  // Per-seed records: final runs with their config and validation score; the old part's as they were.
  const mh = json.runs.filter((r) => r.family === "multihop-qa");
  assert.equal(mh.length, 10);
  for (const r of mh) assert.ok(r.config && r.validation === 0.5, `${r.row} ${r.seed}`);
  assert.ok(json.runs.filter((r) => r.family === "paper-search").every((r) => r.config === undefined && r.validation === undefined));
  const steppoVsPpo = json.paired.find((d) => d.family === "multihop-qa" && d.label === "steppo − ppo");
  assert.deepEqual(steppoVsPpo?.seeds, seeds);
  assert.ok(Math.abs((steppoVsPpo?.mean ?? 0) - 0.13) < 1e-12);
  // The tuned section states the grid, the tuning seeds, the choices and their validation scores.
  assert.match(markdown, /Tuned \(--tune, bench\/algos\/tuning\.ts\): every row trained the same 4-point grid — learning rate 0\.0003, 0\.0001 × clip ×1, ×2/);
  assert.match(markdown, /on tuning seeds 101, 102/);
  assert.match(markdown, /multihop-qa steppo lr0\.0001-clip2x \(lr 0\.0001, clip 0\.1\)/);
  assert.match(markdown, /\| steppo \| lr0\.0001-clip2x \| 0\.0001 \| 0\.1 \| 101: 0\.60, 102: 0\.60 \| 0\.600 \| ✓ \|/);
  assert.match(markdown, /\| test \(in-domain\) \| validation \|/, "the tuned family's table has a validation column");
  assert.match(markdown, /steppo step, lr 0\.0001, clip 0\.1/);
  // The old part: untuned, and no validation column.
  const paperSection = markdown.slice(markdown.indexOf("Untuned"));
  assert.match(markdown, /Untuned: every row ran the shared settings above/);
  assert.doesNotMatch(paperSection.slice(0, paperSection.indexOf("### paper-search") + 300), /\| validation \|/);
});

test("tuning markdown: the table lists every config of every row and marks the choice; untuned settings say so", () => {
  const tuning = grid("steppo", { "lr0.0003-clip1x": [0.5, 0.5], "lr0.0003-clip2x": [0.4, 0.6], "lr0.0001-clip1x": [0.3, 0.3], "lr0.0001-clip2x": [0.5, 0.5] });
  const choices = chooseConfigs(tuning, ["multihop-qa"], [steppo], GRID);
  const table = tuningTable(choices);
  assert.equal(table.split("\n").length, 2 + 4);
  assert.equal((table.match(/✓/g) ?? []).length, 1);
  assert.match(table, /\| steppo \| lr0\.0003-clip1x \| 0\.0003 \| 0\.05 \| 101: 0\.50, 102: 0\.50 \| 0\.500 \| ✓ \|/, "a tie keeps the default");
  assert.match(tuningParagraph(DEFAULT_SETTINGS, []), /^Untuned/);
});

test("--choices-from: each row runs the config a tuned part chose (per row, e.g. lr 1e-4 for one and 3e-5 for another), no grid; refused where it cannot be", () => {
  const grid: TuneGrid = { learningRates: [1e-4, 3e-5], clipFactors: [1], seeds: [101, 102] };
  const [s1e4, s3e5] = configsFor(steppo, grid);
  const p3e5 = configsFor(ppo, grid)[1];
  const choices = [
    { family: "multihop-qa-long", row: "steppo", chosen: s1e4, scores: [] },
    { family: "multihop-qa-long", row: "ppo", chosen: p3e5, scores: [] },
    { family: "multihop-qa", row: "steppo", chosen: s3e5, scores: [] },
  ];
  const part = { date: "2026-12-02T01:40:00.000Z", settings: { ...DEFAULT_SETTINGS, families: ["multihop-qa-long" as Family], tune: grid }, choices };
  const dir = mkdtempSync(join(tmpdir(), "steppo-choices-"));
  const file = join(dir, "multihop-qa-long.json");
  writeFileSync(file, JSON.stringify(part));
  const out = join(dir, "algos");
  const t = settingsFromArgs(["--choices-from", file, "--families", "multihop-qa-long", "--rows", "steppo,ppo", "--env-step-budget", "6000", "--out", out]);
  assert.deepEqual(t.seeds, [1, 2, 3, 4, 5], "final seeds 1–5 unless told");
  assert.equal(t.tune, undefined);
  assert.equal(t.envStepBudget["multihop-qa-long"], 6000);
  assert.equal(t.envStepBudget["multihop-qa"], DEFAULT_SETTINGS.envStepBudget["multihop-qa"], "only the selected families' budget changes");
  assert.deepEqual(
    t.choicesFrom?.choices.map((c) => [c.row, c.chosen.learningRate, c.chosen.clip]),
    [
      ["steppo", 1e-4, 0.05],
      ["ppo", 3e-5, 0.2],
    ],
  );
  assert.deepEqual(t.choicesFrom?.envStepBudget, { "multihop-qa-long": 3000 }, "the budget the choice was made at");
  const final = planFinalTasks(t, t.choicesFrom?.choices ?? []);
  assert.equal(final.length, 10);
  assert.deepEqual([...new Set(final.map((x) => (x.kind === "train" ? `${x.row} ${x.config?.learningRate}` : "")))], ["steppo 0.0001", "ppo 0.00003"]);
  assert.equal(partPath(t), join(`${out}-parts`, "multihop-qa-long-6000steps.json"), "another budget, another part");
  assert.equal(partPath(settingsFromArgs(["--families", "multihop-qa", "--out", out])), join(`${out}-parts`, "multihop-qa.json"));
  const p = tuningParagraph(t, t.choicesFrom?.choices ?? []);
  assert.match(p, /Configs reused \(--choices-from\)/);
  assert.match(p, /tuning seeds 101, 102, at that part's budget \(multihop-qa-long 3000 env steps\)/);
  assert.match(p, /multihop-qa-long ppo lr0\.00003-clip1x \(lr 0\.00003, clip 0\.2\)/);
  // Refusals: with --tune, a row or family the part did not choose for, a final seed it tuned on, an untuned
  // part, a part that would be written over the one it reads.
  const args = ["--choices-from", file, "--families", "multihop-qa-long", "--out", out];
  assert.throws(() => settingsFromArgs([...args, "--tune"]), /--choices-from: not with --tune/);
  assert.throws(() => settingsFromArgs([...args, "--rows", "steppo,grpo"]), /has no choice for grpo on multihop-qa-long/);
  assert.throws(() => settingsFromArgs([...args, "--rows", "steppo", "--families", "paper-search"]), /has no choice for steppo on paper-search/);
  assert.throws(() => settingsFromArgs([...args, "--rows", "steppo", "--seeds", "1,101"]), /101 were tuning seeds/);
  assert.throws(() => reuseChoices({ ...part, settings: DEFAULT_SETTINGS }, "x.json", ["multihop-qa-long"], ["steppo"], [1]), /not a tuned part/);
  mkdirSync(join(dir, "algos-parts"));
  const over = join(dir, "algos-parts", "multihop-qa-long.json");
  writeFileSync(over, JSON.stringify(part));
  assert.throws(() => settingsFromArgs(["--choices-from", over, "--families", "multihop-qa-long", "--rows", "steppo", "--out", out]), /would be saved over/);
  assert.throws(() => settingsFromArgs(["--env-step-budget", "0"]), /--env-step-budget: expected a positive integer, got "0"/);
  // Another number of evaluation tasks: the settings carry it and the part gets its own name.
  const bigger = settingsFromArgs([...args, "--rows", "steppo", "--seeds", "6,7", "--env-step-budget", "6000", "--eval-tasks", "200"]);
  assert.equal(bigger.evalEpisodes, 200);
  assert.equal(partPath(bigger), join(`${out}-parts`, "multihop-qa-long-6000steps-200tasks.json"));
  assert.throws(() => settingsFromArgs(["--eval-tasks", "1.5"]), /--eval-tasks: expected a positive integer, got "1.5"/);
});
