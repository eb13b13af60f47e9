// bench/async.ts's overlap ceiling: the most an asynchronous run can gain over a synchronous one whose update
// spends g waiting for samples and u in the learner: (g + u) / max(g, u).
import assert from "node:assert/strict";
import { test } from "node:test";
import { overlapCeiling } from "../../bench/async.ts";

test("overlap ceiling: 2 when waiting and training take as long, less otherwise, never below 1", () => {
  // 10 updates of 2 s each: 1 s waiting + 1 s training.
  assert.equal(overlapCeiling({ trainingSeconds: 20, waitSecondsPerUpdate: 1 }, 10), 2);
  // 1.5 s waiting + 0.5 s training: the wait is the longer stage.
  assert.equal(overlapCeiling({ trainingSeconds: 20, waitSecondsPerUpdate: 1.5 }, 10), 2 / 1.5);
  // 0.5 s waiting + 1.5 s training: the learner is.
  assert.equal(overlapCeiling({ trainingSeconds: 20, waitSecondsPerUpdate: 0.5 }, 10), 2 / 1.5);
  // Nothing to hide.
  assert.equal(overlapCeiling({ trainingSeconds: 20, waitSecondsPerUpdate: 0 }, 10), 1);
});
