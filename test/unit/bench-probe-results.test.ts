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
    { update: 20, envSteps: 5800, validation: 0.5 },
    { update: 21, envSteps: 5950, validation: null },
    { update: 24, envSteps: 6200, validation: 0.6 },
    { update: 34, envSteps: 8300, validation: 0.3 },
  ];
  assert.equal(scoredPoint({ budget: 12000, points }, 6000, "r").update, 20, "the nearest scored point; a tie keeps the earlier");
  assert.equal(scoredPoint({ budget: 6000, points }, 6000, "r").update, 34, "trained to the budget: its end");
  assert.throws(() => scoredPoint({ budget: 3000, points }, 6000, "p.json run r"), /p\.json run r trained to 3000 env steps, short of the choice's 6000/);
  assert.throws(
    () => scoredPoint({ budget: 10, points: [{ update: 0, envSteps: 0, validation: null }] }, 10, "p.json run r"),
    /p\.json run r has no validation point/,
  );
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
  // The numbers of the file as first assembled by hand (2026-12-03): validation per seed at 3e-4, then at 1e-4.
  assert.deepEqual(
    choices.map((c) => c.scores.map((s) => [s.validation, s.envSteps])),
    [
      [
        [
          [0.58, 0.47],
          [6234, 6041],
        ],
        [
          [0.62, 0.5],
          [6141, 6166],
        ],
      ],
      [
        [
          [0.56, 0.31],
          [6188, 6173],
        ],
        [
          [0.6, 0.45],
          [6069, 6027],
        ],
      ],
      [
        [
          [0.53, 0.45],
          [6336, 5928],
        ],
        [
          [0.61, 0.55],
          [6070, 6204],
        ],
      ],
    ],
  );
  assert.deepEqual(
    choices.map((c) => [c.row, c.chosen.id]),
    [
      ["steppo", "lr0.0001-clip1x"],
      ["ppo", "lr0.0001-clip1x"],
      ["grpo", "lr0.0001-clip1x"],
    ],
  );
});

test("a run off the grid, a grid point run twice on a seed or missing a seed: errors naming the run", () => {
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
