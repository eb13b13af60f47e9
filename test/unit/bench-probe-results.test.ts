// Train-signal results files (bench/train-signal/probe-results.ts): the point nearest a budget, and the choice per
// row that bench:algos --choices-from reads — reproduced from the committed textworld budget study and probe.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { selectRows } from "../../bench/algos/rows.ts";
import { type ProbeFile, probeChoices, scoredPoint } from "../../bench/train-signal/probe-results.ts";

const RESULTS = join(import.meta.dirname, "..", "..", "bench", "results");
const read = (name: string) => JSON.parse(readFileSync(join(RESULTS, name), "utf8")) as ProbeFile;

test("a run is scored at its end when it trained to the budget, else at its point nearest it", () => {
  const points = [
    { update: 0, envSteps: 0, validation: 0.4 },
    { update: 10, envSteps: 5900, validation: null },
    { update: 20, envSteps: 5800, validation: 0.5 },
    { update: 30, envSteps: 6200, validation: 0.6 },
    { update: 40, envSteps: 8300, validation: 0.3 },
  ];
  assert.equal(scoredPoint({ budget: 12000, points }, 6000).update, 20, "the nearest scored point; a tie keeps the earlier");
  assert.equal(scoredPoint({ budget: 6000, points }, 6000).update, 40, "trained to the budget: its end");
  assert.throws(() => scoredPoint({ budget: 10, points: [{ update: 0, envSteps: 0, validation: null }] }, 10), /without a validation point/);
});

test("the committed textworld learning-rate choice is what the rule gives from the budget study and the probe", () => {
  const probe = read("lr-probe-textworld.json");
  const choices = probeChoices(
    [read("budget-study-textworld.json"), probe],
    ["budget-study-textworld.json", "lr-probe-textworld.json"],
    "textworld",
    selectRows(["steppo", "ppo", "grpo"]),
    probe.settings!.tune,
    probe.settings!.envStepBudget.textworld,
  );
  assert.deepEqual(choices, probe.choices);
  assert.deepEqual(
    choices.map((c) => [c.row, c.chosen.id]),
    [
      ["steppo", "lr0.0001-clip1x"],
      ["ppo", "lr0.0001-clip1x"],
      ["grpo", "lr0.0001-clip1x"],
    ],
  );
});

test("a run at a learning rate off the grid, or one grid point run twice on a seed, is an error naming the run", () => {
  const probe = read("lr-probe-textworld.json");
  const grid = { learningRates: [3e-4], clipFactors: [1], seeds: [201, 202] };
  const rows = selectRows(["steppo"]);
  assert.throws(
    () => probeChoices([probe], ["p.json"], "textworld", rows, grid, 6000),
    /p\.json run tw-lr1e4-steppo-s201 \(learning rate 0\.0001, clip 0\.05\) is no point of the grid/,
  );
  const grid2 = { learningRates: [1e-4], clipFactors: [1], seeds: [201, 202] };
  assert.throws(
    () => probeChoices([probe, probe], ["a.json", "b.json"], "textworld", rows, grid2, 6000),
    /steppo seed 201 at lr0\.0001-clip1x ran more than once \(b\.json/,
  );
});
