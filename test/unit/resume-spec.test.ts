// Which checkpoints a run may continue: past update 0 only under the same training spec (or declared-safe
// changes); at update 0, a warm start, whatever the RL settings, as long as what made it is the same.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseJob } from "../../crds/job-spec.ts";
import { checkResumeSpec, trainingSpecHash } from "../../learner/resume-spec.ts";

const spec = (overrides: Record<string, unknown> = {}) =>
  parseJob({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "r" }, spec: overrides }, "r.yaml").spec;

test("past update 0 a changed estimator is refused by name; a declared-safe change is not", () => {
  const before = spec();
  const stored = { spec: before, specHash: trainingSpecHash(before), version: 3 };
  assert.throws(() => checkResumeSpec("ckpt-3", stored, spec({ algorithm: { estimator: "grpo" } })), /algorithm\.estimator "step-gae" → "grpo"/);
  assert.doesNotThrow(() => checkResumeSpec("ckpt-3", stored, spec({ training: { updates: 500 } })));
});

test("a warm start (update 0) starts a run with other RL settings, but not one with another model or warm-up", () => {
  const before = spec();
  const stored = { spec: before, specHash: trainingSpecHash(before), version: 0 };
  assert.doesNotThrow(() => checkResumeSpec("ckpt-0", stored, spec({ algorithm: { estimator: "grpo" }, training: { maxPolicyLag: 2 } })));
  assert.throws(() => checkResumeSpec("ckpt-0", stored, spec({ model: { dModel: 32 } })), /warm start \(update 0\) made for a job with another model/);
  assert.throws(() => checkResumeSpec("ckpt-0", stored, spec({ warmup: { epochs: 9 } })), /another warmup/);
});
