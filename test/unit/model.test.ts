import assert from "node:assert/strict";
import { before, test } from "node:test";
import { selectBackend, tf } from "../../policy/backend.ts";
import { gatherRows, PolicyModel, padBatch } from "../../policy/model.ts";
import { cloneGradients } from "../../learner/ppo-loss.ts";
import { tokenLogProbs } from "../support/reference-ppo-loss.ts";
import { packSteps, type StepSample } from "../../learner/step-batch.ts";

const config = { vocabSize: 23, dModel: 16, layers: 2, heads: 2, contextLength: 32 };

before(async () => {
  await selectBackend("wasm", () => {});
});

function fullForwardLastLogits(model: PolicyModel, seq: Int32Array): Float32Array {
  return tf.tidy(() => {
    const { logits } = model.forward(padBatch([seq], seq.length));
    return tf.slice(logits, [0, seq.length - 1, 0], [1, 1, config.vocabSize]).dataSync() as Float32Array;
  });
}

test("KV-cached decoding gives the same logits as a full forward pass, for ragged contexts", () => {
  const model = new PolicyModel(config, 3);
  const contexts = [Int32Array.of(1, 7, 8, 9, 10, 11), Int32Array.of(1, 4), Int32Array.of(1, 12, 13, 14)];
  const pushed = [Int32Array.of(5, 6, 7), Int32Array.of(9, 10, 11)];
  const decoder = model.decoder(contexts);
  const seqs = contexts.map((c) => Array.from(c));
  for (let step = 0; step <= pushed.length; step++) {
    const got = decoder.logits();
    seqs.forEach((seq, b) => {
      const want = fullForwardLastLogits(model, Int32Array.from(seq));
      for (let v = 0; v < config.vocabSize; v++)
        assert.ok(Math.abs(got[b * config.vocabSize + v] - want[v]) < 1e-4, `row ${b} step ${step} token ${v}: ${got[b * config.vocabSize + v]} vs ${want[v]}`);
    });
    if (step < pushed.length) {
      decoder.push(pushed[step]);
      seqs.forEach((seq, b) => {
        seq.push(pushed[step][b]);
      });
    }
  }
  decoder.dispose();
  model.dispose();
});

test("gradients reach every parameter on the wasm backend (gathered embeddings, scatterND gradient)", () => {
  const model = new PolicyModel(config, 4);
  const sample: StepSample = {
    trajId: "t",
    workerId: "w",
    policyVersion: 0,
    contextIds: Int32Array.of(1, 6, 7, 8),
    actionIds: Int32Array.of(9, 10, 2),
    behaviourLogProbs: new Float32Array(3),
    oldLogProbs: new Float32Array(3),
    advantages: new Float32Array(3),
    valueTargets: new Float32Array(0),
    oldValues: new Float32Array(0),
    valueOffsets: new Int32Array(0),
  };
  const {
    grads,
    stats: { loss },
  } = cloneGradients(model, packSteps([sample, { ...sample, contextIds: Int32Array.of(1, 11) }]));
  assert.ok(Number.isFinite(loss) && loss > 0);
  for (const name of model.params.keys()) {
    if (name.startsWith("value_head")) continue; // cloning does not train the critic
    const g = grads[name];
    assert.ok(g, `no gradient for ${name}`);
    const norm = tf.tidy(() => tf.sum(tf.abs(g)).dataSync()[0]);
    assert.ok(Number.isFinite(norm) && norm > 0, `zero or non-finite gradient for ${name}: ${norm}`);
  }
  tf.dispose(Object.values(grads));
  model.dispose();
});

test("the same seed gives the same initial weights", async () => {
  const a = new PolicyModel(config, 9);
  const b = new PolicyModel(config, 9);
  const c = new PolicyModel(config, 10);
  const [wa, wb, wc] = await Promise.all([a.exportWeights(), b.exportWeights(), c.exportWeights()]);
  assert.deepEqual(wa[0].data, wb[0].data);
  assert.notDeepEqual(wa[0].data, wc[0].data);
});

test("the loss's positions alone give the full forward pass's log-probs, entropy and values, and the same gradients", () => {
  const model = new PolicyModel(config, 5);
  const ids = tf.tensor2d(Int32Array.of(1, 6, 7, 8, 9, 1, 11, 6, 6, 10), [2, 5], "int32"); // a repeated token: summed gradient
  const targets = Int32Array.of(0, 0, 9, 10, 2, 0, 6, 6, 10, 0);
  const positions = Int32Array.of(2, 3, 4, 6, 7, 8);
  const dense = (m: PolicyModel) => {
    const { logits, values } = m.forward(ids);
    const logp = tf.reshape(tf.logSoftmax(logits), [10, config.vocabSize]);
    const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(targets, "int32"), config.vocabSize).toFloat()), -1);
    const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1));
    return [picked, entropy, values].map((x) => select(x));
  };
  // Picking the positions by a one-hot product: differentiable on wasm (gather's gradient is not).
  const select = (x: tf.Tensor) => tf.reshape(tf.matMul(tf.oneHot(tf.tensor1d(positions, "int32"), 10).toFloat(), tf.reshape(x, [10, 1])), [positions.length]);
  const compact = () => {
    const out = tokenLogProbs(model, ids, targets, 1, positions);
    return [out.picked, out.entropy, out.values].map((x) => select(x));
  };
  const want = dense(model);
  const got = compact();
  for (let i = 0; i < 3; i++) {
    const [g, w] = [got[i].dataSync(), want[i].dataSync()];
    for (let j = 0; j < w.length; j++) assert.ok(Math.abs(g[j] - w[j]) < 1e-5, `output ${i}[${j}]: ${g[j]} vs ${w[j]}`);
  }
  // Off the positions the grid is zero.
  assert.equal(tokenLogProbs(model, ids, targets, 1, positions).picked.dataSync()[0], 0);
  const weigh = (xs: tf.Tensor[]) => tf.addN(xs.map((x, i) => tf.sum(tf.mul(x, tf.range(1, x.size + 1).mul(i + 1))))) as tf.Scalar;
  const gradWant = tf.variableGrads(() => weigh(dense(model)), model.variables).grads;
  const gradGot = tf.variableGrads(() => weigh(compact()), model.variables).grads;
  for (const [name, w] of Object.entries(gradWant)) {
    const [g, d] = [gradGot[name].dataSync(), w.dataSync()];
    for (let j = 0; j < d.length; j++) assert.ok(Math.abs(g[j] - d[j]) < 1e-4, `gradient of ${name}[${j}]: ${g[j]} vs ${d[j]}`);
  }
  model.dispose();
});

test("cloneGradients (log-probs at the action positions, weighted per step) equals the seq-mean-token-mean of the full forward pass's log-softmax, in loss and gradients", () => {
  const model = new PolicyModel(config, 6);
  const step = (context: number[], action: number[]): StepSample => ({
    trajId: "t",
    workerId: "w",
    policyVersion: 0,
    contextIds: Int32Array.from(context),
    actionIds: Int32Array.from(action),
    behaviourLogProbs: new Float32Array(action.length),
    oldLogProbs: new Float32Array(action.length),
    advantages: new Float32Array(action.length),
    valueTargets: new Float32Array(0),
    oldValues: new Float32Array(0),
    valueOffsets: new Int32Array(0),
  });
  const p = packSteps([step([1, 6, 7, 8], [9, 10, 2]), step([1, 11], [6, 6, 6, 12, 2]), step([1, 3, 4, 5, 6, 7], [8])]);
  // The loss as written before: −Σ_b (1 / L_b) Σ_t mask · log π(target) / B over the full forward pass.
  const dense = () => {
    const logp = tf.reshape(tf.logSoftmax(model.forward(tf.tensor2d(p.ids, [p.B, p.T], "int32")).logits), [p.B * p.T, config.vocabSize]);
    const picked = tf.reshape(tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(p.targets, "int32"), config.vocabSize).toFloat()), -1), [p.B, p.T]);
    const perStep = tf.mul(tf.sum(tf.mul(picked, tf.tensor2d(p.actionMask, [p.B, p.T])), 1), tf.tensor1d(p.invLength));
    return tf.neg(tf.div(tf.sum(perStep), p.B)) as tf.Scalar;
  };
  const want = tf.variableGrads(dense, model.variables);
  const got = cloneGradients(model, p);
  assert.ok(Math.abs(got.stats.loss - want.value.dataSync()[0]) < 1e-5, `loss ${got.stats.loss} vs ${want.value.dataSync()[0]}`);
  const names = new Map(model.variables.map((v, i) => [v.name, [...model.params.keys()][i]]));
  for (const [vname, w] of Object.entries(want.grads)) {
    const name = names.get(vname)!;
    const [g, d] = [got.grads[name].dataSync(), w.dataSync()];
    for (let j = 0; j < d.length; j++) assert.ok(Math.abs(g[j] - d[j]) < 1e-4, `gradient of ${name}[${j}]: ${g[j]} vs ${d[j]}`);
  }
  tf.dispose([...Object.values(want.grads), want.value, ...Object.values(got.grads)]);
  model.dispose();
});

test("gathered rows equal one-hot × table in value and gradient, repeated indices summed", () => {
  const table = tf.randomNormal([6, 3], 0, 1, "float32", 11);
  const idx = tf.tensor1d(Int32Array.of(4, 1, 4, 0, 5, 4), "int32");
  const weights = tf.reshape(tf.range(1, 19), [6, 3]);
  const viaGather = (t: tf.Tensor) => tf.sum(tf.mul(gatherRows(t, idx), weights)) as tf.Scalar;
  const viaOneHot = (t: tf.Tensor) => tf.sum(tf.mul(tf.matMul(tf.oneHot(idx, 6).toFloat(), t), weights)) as tf.Scalar;
  assert.ok(Math.abs(viaGather(table).dataSync()[0] - viaOneHot(table).dataSync()[0]) < 1e-4);
  const [g, w] = [tf.grad(viaGather)(table).dataSync(), tf.grad(viaOneHot)(table).dataSync()];
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(g[i] - w[i]) < 1e-5, `d table[${i}]: ${g[i]} vs ${w[i]}`);
});
