// The final evaluation reuses the last update's greedy test score only when it was measured with the
// final weights (learner/run-setup.ts measuredAt).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { CurvePoint } from "../../learner/report.ts";
import { initialPoint } from "../../learner/run-phases.ts";
import { measuredAt } from "../../learner/run-setup.ts";

const point = (update: number, testSuccess: number | null): CurvePoint => ({
  ...initialPoint(0),
  update,
  envSteps: update * 10,
  trainSuccess: 0.5,
  testSuccess,
  seconds: 1,
});

test("the last update's test score is reused for that version only", () => {
  assert.deepEqual(measuredAt([point(0, 0.3), point(1, null), point(2, 0.45)], 2), { test: 0.45 });
  // A score of 0 is a measurement too.
  assert.deepEqual(measuredAt([point(0, 0.3), point(2, 0)], 2), { test: 0 });
});

test("nothing is reused when the last point is older than the weights or has no test score", () => {
  assert.deepEqual(measuredAt([point(0, 0.3), point(2, 0.45)], 3), {});
  assert.deepEqual(measuredAt([point(0, 0.3), point(1, null)], 1), {});
  assert.deepEqual(measuredAt([], 0), {});
});
