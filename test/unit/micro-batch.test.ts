import assert from "node:assert/strict";
import { before, test } from "node:test";
import { Rng } from "../../core/rng.ts";
import { selectBackend, tf } from "../../policy/backend.ts";
import { lengthSortedMicroBatches, MICRO_BATCH_BUDGET, minibatchGradients } from "../../learner/micro-batch.ts";
import { PolicyModel } from "../../policy/model.ts";
import { cloneGradients, type LossConfig, ppoGradients } from "../../learner/ppo-loss.ts";
import { packSteps, type StepSample } from "../../learner/step-batch.ts";

const config = { vocabSize: 23, dModel: 16, layers: 2, heads: 2, contextLength: 48 };

before(async () => {
  await selectBackend("wasm", () => {});
});

/** Steps of ragged lengths (4–36 context tokens, 1–6 action tokens) with step-level value targets. */
function steps(n: number, seed: number): StepSample[] {
  const rng = new Rng(seed);
  const ids = (len: number) => Int32Array.from({ length: len }, () => 1 + Math.floor(rng.next() * (config.vocabSize - 1)));
  const floats = (len: number, scale: number, shift = 0) => Float32Array.from({ length: len }, () => shift + (rng.next() - 0.5) * scale);
  return Array.from({ length: n }, (_, i) => {
    const L = 1 + Math.floor(rng.next() * 6);
    const old = floats(L, 0.4, -2);
    return {
      trajId: `t${i}`,
      workerId: "w",
      policyVersion: 0,
      contextIds: ids(4 + Math.floor(rng.next() * 33)),
      actionIds: ids(L),
      behaviourLogProbs: old.map((x) => x + (rng.next() - 0.5) * 0.1),
      oldLogProbs: old,
      advantages: floats(L, 2),
      valueTargets: floats(1, 2),
      oldValues: floats(1, 0.2),
      valueOffsets: Int32Array.of(0),
    };
  });
}

function assertSameGradients(got: Record<string, tf.Tensor>, want: Record<string, tf.Tensor>): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort());
  for (const name of Object.keys(want)) {
    const g = got[name].dataSync();
    const w = want[name].dataSync();
    const scale = Math.max(1e-6, ...Array.from(w, Math.abs));
    for (let i = 0; i < w.length; i++) assert.ok(Math.abs(g[i] - w[i]) <= 1e-4 * scale, `${name}[${i}]: ${g[i]} vs ${w[i]}`);
  }
}

/** Steps × (longest length)² of a micro-batch: what MICRO_BATCH_BUDGET bounds. */
const padded = (part: StepSample[]) => part.length * Math.max(...part.map((s) => s.contextIds.length + s.actionIds.length)) ** 2;

/** A budget small enough that `steps(≈20)` splits into several micro-batches (up to ~1600 = one 40-token step). */
const SMALL_BUDGET = 6000;

test("micro-batches: sorted by length, every step once, within the budget, as few as the budget allows", () => {
  const samples = steps(21, 1);
  assert.equal(lengthSortedMicroBatches(samples).length, 1, "the default budget holds 21 short steps");
  const parts = lengthSortedMicroBatches(samples, SMALL_BUDGET);
  assert.ok(parts.length > 2, `${parts.length} micro-batches`);
  assert.ok(parts.every((p) => p.length === 1 || padded(p) <= SMALL_BUDGET));
  // Each run is cut only where the next step would not fit.
  for (let i = 0; i + 1 < parts.length; i++) assert.ok(padded([...parts[i], parts[i + 1][0]]) > SMALL_BUDGET);
  // A step too long for the budget gets a micro-batch of its own.
  assert.deepEqual(
    lengthSortedMicroBatches(samples, 1).map((p) => p.length),
    samples.map(() => 1),
  );
  assert.ok(MICRO_BATCH_BUDGET >= 160_000);
  const flat = parts.flat();
  assert.deepEqual(new Set(flat), new Set(samples));
  const lengths = flat.map((s) => s.contextIds.length + s.actionIds.length);
  assert.deepEqual(
    lengths,
    [...lengths].sort((a, b) => a - b),
  );
});

for (const ratio of ["step", "token"] as const) {
  test(`PPO (${ratio} ratio): the micro-batched gradient and statistics equal the whole minibatch's`, () => {
    const model = new PolicyModel(config, 5);
    const samples = steps(21, 2);
    const cfg: LossConfig = { ratio, clip: 0.2, valueCoef: 0.5, entropyCoef: 0.01, klCoef: 0.1, importanceCap: 2, temperature: 1 };
    const whole = ppoGradients(model, packSteps(samples), cfg);
    const micro = minibatchGradients(samples, (p, norm) => ppoGradients(model, p, cfg, norm), SMALL_BUDGET);
    assertSameGradients(micro.grads, whole.grads);
    for (const key of Object.keys(whole.stats) as (keyof typeof whole.stats)[]) {
      assert.ok(
        Math.abs(micro.stats[key] - whole.stats[key]) <= 1e-5 + 1e-4 * Math.abs(whole.stats[key]),
        `${key}: ${micro.stats[key]} vs ${whole.stats[key]}`,
      );
    }
    tf.dispose([...Object.values(whole.grads), ...Object.values(micro.grads)]);
    model.dispose();
  });
}

test("cloning: the micro-batched gradient and loss equal the whole minibatch's", () => {
  const model = new PolicyModel(config, 6);
  const samples = steps(19, 3);
  const whole = cloneGradients(model, packSteps(samples));
  const micro = minibatchGradients(samples, (p, norm) => cloneGradients(model, p, norm), SMALL_BUDGET);
  assertSameGradients(micro.grads, whole.grads);
  assert.ok(Math.abs(micro.stats.loss - whole.stats.loss) < 1e-5, `${micro.stats.loss} vs ${whole.stats.loss}`);
  tf.dispose([...Object.values(whole.grads), ...Object.values(micro.grads)]);
  model.dispose();
});

test("minibatchGradients frees the per-micro-batch gradients it sums", () => {
  const model = new PolicyModel(config, 7);
  const samples = steps(20, 4);
  const before = tf.memory().numTensors;
  const { grads } = minibatchGradients(samples, (p, norm) => cloneGradients(model, p, norm), SMALL_BUDGET);
  assert.equal(tf.memory().numTensors, before + Object.keys(grads).length);
  tf.dispose(Object.values(grads));
  model.dispose();
});
