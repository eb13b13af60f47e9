// The explained-variance ceiling of bench/critic-ceiling.ts: what a perfect first-step critic could explain.
import assert from "node:assert/strict";
import { test } from "node:test";
import { firstStepCeiling } from "../../bench/critic-ceiling.ts";

const runs = (successes: number, k: number) => Array.from({ length: k }, (_, i) => i < successes);

test("critic ceiling: tasks that are always or never solved are fully explained by the task", () => {
  const r = firstStepCeiling([runs(8, 8), runs(0, 8), runs(8, 8), runs(0, 8)]);
  assert.equal(r.success, 0.5);
  assert.ok(Math.abs(r.ceiling - 1) < 1e-12, `ceiling ${r.ceiling}`);
});

test("critic ceiling: equal tasks leave nothing to explain, once the per-task sampling noise is removed", () => {
  // Every task solved in half its episodes: p̂ has no spread, so the ceiling is 0 (clamped, not negative).
  assert.equal(firstStepCeiling([runs(4, 8), runs(4, 8), runs(4, 8)]).ceiling, 0);
});

test("critic ceiling: between the two, Var(p) / Var(R) with p̂'s noise subtracted", () => {
  // p̂ = 0.75 and 0.25 with K = 4: Var(p̂) = 0.0625, noise = mean(p̂(1 − p̂)) / 3 = 0.0625, so 0 is explained;
  // with K = 8 and the same rates the noise halves to 0.0268: (0.0625 − 0.0268) / 0.25 = 0.143.
  assert.equal(firstStepCeiling([runs(3, 4), runs(1, 4)]).ceiling, 0);
  const r = firstStepCeiling([runs(6, 8), runs(2, 8)]);
  assert.ok(Math.abs(r.ceiling - (0.0625 - 0.1875 / 7) / 0.25) < 1e-12, `ceiling ${r.ceiling}`);
});
