// The 2 × 2 ablation report (bench/algos/ablation.ts): the four cells of one part, paired by seed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ablationMarkdown, ablationReport } from "../../bench/algos/ablation.ts";
import type { AlgosPart } from "../../bench/algos/assemble.ts";
import { DEFAULT_SETTINGS } from "../../bench/algos/settings.ts";
import { trainRun } from "../support/algos-runs.ts";

const run = (row: string, seed: number, test: number) => trainRun(row, seed, test, {}, { validation: test });

function part(rows: Record<string, number[]>): AlgosPart {
  const seeds = [6, 7, 8];
  return {
    date: "2026-12-04",
    node: "v20",
    cpus: 2,
    totalWallSeconds: 1,
    settings: { ...DEFAULT_SETTINGS, families: ["multihop-qa"], rows: Object.keys(rows), seeds },
    rows: [],
    warmStarts: [],
    runs: Object.entries(rows).flatMap(([row, tests]) => tests.map((t, i) => run(row, seeds[i], t))),
  };
}

const GRID = { steppo: [0.6, 0.7, 0.65], "step-gae-token-ratio": [0.55, 0.65, 0.62], "token-gae-step-ratio": [0.52, 0.66, 0.61], ppo: [0.5, 0.6, 0.6] };

test("the four cells' means and their paired differences: StepPO − PPO is the per-seed mean difference", () => {
  const r = ablationReport(part(GRID), "multihop-qa");
  assert.deepEqual(r.seeds, [6, 7, 8]);
  assert.deepEqual(
    r.cells.map((c) => [c.row, Number(c.meanTest.toFixed(4))]),
    [
      ["steppo", 0.65],
      ["step-gae-token-ratio", 0.6067],
      ["token-gae-step-ratio", 0.5967],
      ["ppo", 0.5667],
    ],
  );
  const stepVsPpo = r.paired.find((p) => p.label === "steppo − ppo")!;
  assert.deepEqual(
    stepVsPpo.diffs.map((d) => Number(d.toFixed(4))),
    [0.1, 0.1, 0.05],
  );
  assert.equal(r.paperOrderingHolds, true);
  assert.match(ablationMarkdown(r), /ordering \(StepPO > each single ablation > PPO\) holds/);
});

test("the ordering is reported as not holding when a single ablation beats StepPO in the mean", () => {
  const r = ablationReport(part({ ...GRID, "step-gae-token-ratio": [0.7, 0.75, 0.7] }), "multihop-qa");
  assert.equal(r.paperOrderingHolds, false);
  assert.match(ablationMarkdown(r), /does not hold/);
});

test("the ordering needs both single ablations above PPO, strictly", () => {
  const r = ablationReport(part({ ...GRID, "token-gae-step-ratio": [0.5, 0.6, 0.6] }), "multihop-qa");
  assert.equal(r.paperOrderingHolds, false, "a single ablation level with PPO");
});

test("a cell without a run on one of the part's seeds, or not run at all, is an error naming it", () => {
  const partial = part(GRID);
  partial.runs = partial.runs.filter((x) => !(x.row === "ppo" && x.seed === 8));
  assert.throws(() => ablationReport(partial, "multihop-qa"), /no ppo run on multihop-qa for seed\(s\) 8/);
  const { ppo: _, ...three } = GRID;
  assert.throws(() => ablationReport(part(three), "multihop-qa"), /no ppo run on multihop-qa for seed\(s\) 6, 7, 8/);
});
