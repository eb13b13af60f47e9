import assert from "node:assert/strict";
import { test } from "node:test";
import { otherRuntimeMessage, runStateKind } from "../../learner/run-state-kind.ts";

test("a checkpoint's run state names the runtime that wrote it; an update-0 state without either is a warm start", () => {
  assert.equal(runStateKind({ workers: [], curve: [] }, 3), "embedded");
  assert.equal(runStateKind({ accounting: { consumed: 1, stale: 0 }, curve: [] }, 3), "distributed");
  assert.equal(runStateKind({ initial: { test: 0.5 } }, 0), "warm-start");
  assert.throws(() => runStateKind({ initial: {} }, 4), /neither the embedded runner's nor the distributed learner's/);
  assert.match(otherRuntimeMessage("/r/ckpt-1", "embedded", 1), /^\/r\/ckpt-1 was written by `steppo run`.*--fresh/);
  assert.match(otherRuntimeMessage("/r/ckpt-1", "distributed", 1), /^\/r\/ckpt-1 was written by the distributed learner.*--nats URL/);
});
