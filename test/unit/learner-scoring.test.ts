// The learner's scoring passes (proximal log-probs and values, bootstrap values) read the heads at a few
// positions only and run the last layer there alone (PolicyModel.headsAt): they must equal a full forward
// pass's log-softmax and values at the same positions, for ragged steps in no particular order (scoreSteps
// scores them in length-sorted chunks and returns them in the order given), a step with no action tokens and
// more steps than one scoring chunk.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../core/rng.ts";
import { parseJob } from "../../crds/job-spec.ts";
import { Learner } from "../../learner/learner.ts";
import { selectBackend, tf } from "../../policy/backend.ts";
import { padBatch } from "../../policy/model.ts";

const config = { vocabSize: 19, dModel: 16, layers: 2, heads: 2, contextLength: 40 };

function learner(temperature: number): Learner {
  const job = parseJob(
    {
      apiVersion: "steppo.dev/v1alpha1",
      kind: "StepPOJob",
      metadata: { name: "scoring" },
      spec: { seed: 3, model: { dModel: 16, layers: 2, heads: 2, contextLength: 40 }, rollout: { temperature } },
    },
    "scoring.yaml",
  );
  const l = new Learner(config, job.spec);
  // Perturb every parameter so that the value head and biases matter.
  tf.tidy(() => {
    let seed = 50;
    for (const v of l.model.params.values()) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.3, "float32", seed++)));
  });
  return l;
}

/** 70 steps (more than one scoring chunk): contexts of 1–30 tokens, 0–8 action tokens. */
function steps(): { contextIds: Int32Array; actionIds: Int32Array }[] {
  const rng = new Rng(4);
  const ids = (n: number) => Int32Array.from({ length: n }, () => 1 + Math.floor(rng.next() * (config.vocabSize - 1)));
  return Array.from({ length: 70 }, (_, i) => ({
    contextIds: ids(1 + Math.floor(rng.next() * 30)),
    actionIds: ids(i === 5 ? 0 : 1 + Math.floor(rng.next() * 8)),
  }));
}

for (const temperature of [1, 0.5]) {
  test(`scoreSteps equals the full forward pass's log-softmax and values at the action positions (temperature ${temperature})`, async () => {
    await selectBackend("wasm", () => {});
    const l = learner(temperature);
    const s = steps();
    const got = l.scoreSteps(l.model, s);
    assert.equal(got.logProbs[5].length, 0);
    tf.tidy(() => {
      s.forEach((step, k) => {
        const seq = Int32Array.from([...step.contextIds, ...step.actionIds]);
        const out = l.model.forward(padBatch([seq], seq.length));
        const logp = tf.logSoftmax(tf.div(out.logits, temperature)).dataSync();
        const values = out.values.dataSync();
        const Lc = step.contextIds.length;
        step.actionIds.forEach((a, i) => {
          const t = Lc - 1 + i;
          const [wl, wv] = [logp[t * config.vocabSize + a], values[t]];
          assert.ok(Math.abs(got.logProbs[k][i] - wl) < 1e-4, `step ${k} token ${i}: log-prob ${got.logProbs[k][i]} vs ${wl}`);
          assert.ok(Math.abs(got.values[k][i] - wv) < 1e-4, `step ${k} token ${i}: value ${got.values[k][i]} vs ${wv}`);
        });
      });
    });
    l.dispose();
  });
}

test("bootstrap values (the value at each context's last position) equal the full forward pass's", async () => {
  await selectBackend("wasm", () => {});
  const l = learner(1);
  const contexts = steps().map((s) => s.contextIds);
  // contextValues is private: the learner's bootstrap of truncated episodes.
  const got = (l as unknown as { contextValues(c: Int32Array[]): Float32Array }).contextValues(contexts);
  tf.tidy(() => {
    contexts.forEach((c, k) => {
      const want = l.model.forward(padBatch([c], c.length)).values.dataSync()[c.length - 1];
      assert.ok(Math.abs(got[k] - want) < 1e-4, `context ${k}: ${got[k]} vs ${want}`);
    });
  });
  l.dispose();
});
