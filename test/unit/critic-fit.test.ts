// The critic warm-up's pieces: the ridge fit, explained variance, distinct evaluation tasks, and the
// learner's fit of its value head to the returns of real episodes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseJob } from "../../crds/job-spec.ts";
import { Rng } from "../../core/rng.ts";
import { selectBackend } from "../../policy/backend.ts";
import { fitRidge } from "../../learner/critic-fit.ts";
import { explainedVariance } from "../../learner/diagnostics.ts";
import { distinctTasks } from "../../learner/evaluation.ts";
import { Learner } from "../../learner/learner.ts";
import type { Task } from "../../envs/environment.ts";
import { twoKindEpisodes } from "../support/two-kind-episodes.ts";

test("fitRidge recovers the weights and bias of a noiseless linear target", () => {
  const rng = new Rng(3);
  const w = [0.5, -1.25, 2, 0];
  const rows = Array.from({ length: 200 }, () => Float32Array.from({ length: 4 }, () => rng.normal()));
  const y = rows.map((x) => x.reduce((s, xi, j) => s + xi * w[j], 0.75));
  const fit = fitRidge(rows, y, 0);
  for (const [j, wi] of fit.w.entries()) assert.ok(Math.abs(wi - w[j]) < 1e-4, `w[${j}] = ${wi}, want ${w[j]}`);
  assert.ok(Math.abs(fit.b - 0.75) < 1e-4, `b = ${fit.b}`);
});

test("fitRidge's penalty shrinks the weights towards zero but leaves the mean to the bias", () => {
  const rows = [Float32Array.of(1), Float32Array.of(-1), Float32Array.of(1), Float32Array.of(-1)];
  const y = [3, 1, 3, 1]; // y = 2 + x
  const loose = fitRidge(rows, y, 0);
  const tight = fitRidge(rows, y, 10);
  assert.ok(Math.abs(loose.w[0] - 1) < 1e-6);
  assert.ok(tight.w[0] > 0 && tight.w[0] < 0.2, `w = ${tight.w[0]}`);
  assert.ok(Math.abs(tight.b - 2) < 1e-6, "the bias is not penalised: it still predicts the mean");
});

test("fitRidge refuses an empty or mismatched fit", () => {
  assert.throws(() => fitRidge([], [], 0.1), /no value positions/);
  assert.throws(() => fitRidge([Float32Array.of(1)], [1, 2], 0.1), /1 feature rows for 2 targets/);
});

test("explained variance: 1 for a perfect critic, 0 for the mean, negative for worse, null when nothing varies", () => {
  const target = [0, 1, 0, 1];
  assert.equal(explainedVariance(target, target), 1);
  assert.equal(explainedVariance([0.5, 0.5, 0.5, 0.5], target), 0);
  assert.ok((explainedVariance([1, 0, 1, 0], target) as number) < 0);
  assert.equal(explainedVariance([0.2, 0.3], [1, 1]), null);
  assert.equal(explainedVariance([1], [1]), null);
  assert.throws(() => explainedVariance([1, 2], [1]), /2 predictions for 1 targets/);
});

test("evaluation tasks are distinct, and a small split ends the search with every task it has", () => {
  const rng = new Rng(5);
  const task = (id: string): Task => ({ id, family: "f", split: "test", prompt: [], answer: "" });
  const fromSeven = distinctTasks(() => task(`t${Math.floor(rng.next() * 7)}`), 100);
  assert.equal(fromSeven.length, 7);
  assert.equal(new Set(fromSeven.map((t) => t.id)).size, 7);
  let n = 0;
  const plenty = distinctTasks(() => task(`t${n++}`), 50);
  assert.equal(plenty.length, 50);
});

test("the learner's critic warm-up fits its value head to the episodes' returns, and the policy is untouched", async () => {
  await selectBackend("cpu", () => {});
  const job = parseJob(
    {
      apiVersion: "steppo.dev/v1alpha1",
      kind: "StepPOJob",
      metadata: { name: "critic" },
      spec: { seed: 2, model: { dModel: 16, layers: 1, heads: 2, contextLength: 32 }, learner: { backend: "cpu" } },
    },
    "critic.yaml",
  );
  const learner = new Learner({ vocabSize: 12, dModel: 16, layers: 1, heads: 2, contextLength: 32 }, job.spec);
  const batch = twoKindEpisodes(24);
  const before = new Map((await learner.model.exportWeights()).map((w) => [w.name, w.data]));
  const fit = learner.fitCritic(batch, 1e-3);
  assert.ok(fit && fit.positions === 48, `fitted ${fit?.positions} positions`);
  assert.ok((fit.explainedVariance as number) > 0.9, `explained variance ${fit.explainedVariance}`);
  const after = new Map((await learner.model.exportWeights()).map((w) => [w.name, w.data]));
  for (const [name, data] of before) {
    const changed = data.some((x, i) => x !== after.get(name)![i]);
    assert.equal(changed, name.startsWith("value_head"), `${name} ${changed ? "changed" : "did not change"}`);
  }
  // The first update now reads a critic that explains the returns, not V ≡ 0.
  const stats = learner.update(batch);
  assert.ok((stats.explainedVariance as number) > 0.9, `update's explained variance ${stats.explainedVariance}`);
  learner.dispose();
});

test("criticLearningRate: the value head's parameters, and only they, step at its multiple of learningRate; unset, no scales", async () => {
  await selectBackend("cpu", () => {});
  const learnerWith = (algorithm: object) => {
    const job = parseJob(
      {
        apiVersion: "steppo.dev/v1alpha1",
        kind: "StepPOJob",
        metadata: { name: "critic-lr" },
        spec: { seed: 2, algorithm, model: { dModel: 16, layers: 1, heads: 2, contextLength: 32 }, learner: { backend: "cpu" } },
      },
      "critic-lr.yaml",
    );
    return new Learner({ vocabSize: 12, dModel: 16, layers: 1, heads: 2, contextLength: 32 }, job.spec);
  };
  const plain = learnerWith({ learningRate: 3e-4 });
  assert.equal(plain.algorithm.criticLearningRate, 3e-4);
  assert.equal(plain.optimizer.config.learningRateScales, undefined);
  const tenfold = learnerWith({ learningRate: 3e-4, criticLearningRate: 3e-3 });
  const scales = tenfold.optimizer.config.learningRateScales;
  assert.deepEqual([...(scales?.keys() ?? [])].sort(), ["value_head.b", "value_head.w"]);
  for (const s of scales?.values() ?? []) assert.ok(Math.abs(s - 10) < 1e-9, `scale ${s}`);
  plain.dispose();
  tenfold.dispose();
});
