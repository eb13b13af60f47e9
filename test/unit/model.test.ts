import assert from "node:assert/strict";
import { before, test } from "node:test";
import { selectBackend, tf } from "../../learner/backend.ts";
import { PolicyModel, padBatch } from "../../learner/model.ts";
import { cloneGradients } from "../../learner/ppo-loss.ts";
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

test("gradients reach every parameter on the wasm backend (one-hot embeddings, no gather gradient)", () => {
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
