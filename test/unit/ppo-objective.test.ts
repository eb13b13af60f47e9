// The PPO objective evaluated in JavaScript at the loss positions (learner/ppo-objective.ts, through
// ppoGradients) against the tensor version it replaced (test/support/reference-ppo-loss.ts): the same loss,
// statistics and gradient of every parameter to float tolerance, for both ratio modes, with every optional
// term on, clipped value targets, capped importance weights and ratios on both sides of the clip range.
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { Rng } from "../../core/rng.ts";
import { selectBackend, tf } from "../../policy/backend.ts";
import { PolicyModel } from "../../policy/model.ts";
import { type LossConfig, ppoGradients } from "../../learner/ppo-loss.ts";
import { lossPositions, positionTerms, ppoObjective } from "../../learner/ppo-objective.ts";
import { packSteps, type StepSample } from "../../learner/step-batch.ts";
import { referencePpoGradients } from "../support/reference-ppo-loss.ts";

const config = { vocabSize: 23, dModel: 16, layers: 2, heads: 2, contextLength: 48 };

before(async () => {
  await selectBackend("wasm", () => {});
});

/**
 * Steps of ragged lengths whose old log-probs sit near the model's (so ratios fall inside and outside a clip
 * of 0.05), behaviour log-probs far enough off to reach the importance cap, token or step value targets.
 */
function steps(n: number, seed: number, tokenCritic: boolean): StepSample[] {
  const rng = new Rng(seed);
  const ids = (len: number) => Int32Array.from({ length: len }, () => 1 + Math.floor(rng.next() * (config.vocabSize - 1)));
  const floats = (len: number, scale: number, shift = 0) => Float32Array.from({ length: len }, () => shift + (rng.next() - 0.5) * scale);
  return Array.from({ length: n }, (_, i) => {
    const L = 1 + Math.floor(rng.next() * 6);
    const old = floats(L, 0.3, -Math.log(config.vocabSize));
    const V = tokenCritic ? L : 1;
    return {
      trajId: `t${i}`,
      workerId: "w",
      policyVersion: 0,
      contextIds: ids(3 + Math.floor(rng.next() * 20)),
      actionIds: ids(L),
      behaviourLogProbs: old.map((x) => x + (rng.next() - 0.5) * 2),
      oldLogProbs: old,
      advantages: floats(L, 2),
      refLogProbs: old.map((x) => x + (rng.next() - 0.5) * 0.5),
      valueTargets: floats(V, 2),
      oldValues: floats(V, 0.4),
      valueOffsets: Int32Array.from({ length: V }, (_, k) => k),
    };
  });
}

const CASES: [string, LossConfig, boolean][] = [
  ["step ratio, step critic", { ratio: "step", clip: 0.05, valueCoef: 0.5, entropyCoef: 0.01, klCoef: 0.1, importanceCap: 1.5, temperature: 0.5 }, false],
  [
    "token ratio, token critic, clipped values",
    { ratio: "token", clip: 0.05, valueCoef: 0.7, valueClip: 0.1, entropyCoef: 0.02, klCoef: 0.05, importanceCap: 1.5, temperature: 1 },
    true,
  ],
  ["step ratio, no optional terms, no critic", { ratio: "step", clip: 0.2, valueCoef: 0, entropyCoef: 0, klCoef: 0, importanceCap: 2, temperature: 1 }, false],
];

for (const [what, cfg, tokenCritic] of CASES) {
  test(`ppoGradients (the objective in JavaScript) equals the tensor loss in loss, statistics and every gradient: ${what}`, () => {
    const model = new PolicyModel(config, 3);
    tf.tidy(() => {
      let seed = 40;
      for (const v of model.params.values()) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.2, "float32", seed++)));
    });
    const samples = steps(13, 5, tokenCritic);
    const packed = packSteps(samples);
    const norm = { steps: 17, tokens: 50, valuePositions: 23 }; // a micro-batch's share of a larger minibatch
    for (const n of [undefined, norm]) {
      const got = ppoGradients(model, packed, cfg, n);
      const want = referencePpoGradients(model, packed, cfg, n);
      for (const key of Object.keys(want.stats) as (keyof typeof want.stats)[])
        assert.ok(Math.abs(got.stats[key] - want.stats[key]) <= 1e-5 + 1e-4 * Math.abs(want.stats[key]), `${key}: ${got.stats[key]} vs ${want.stats[key]}`);
      assert.deepEqual(Object.keys(got.grads).sort(), Object.keys(want.grads).sort());
      for (const name of Object.keys(want.grads)) {
        const g = got.grads[name].dataSync();
        const w = want.grads[name].dataSync();
        const scale = Math.max(1e-6, ...Array.from(w, Math.abs));
        for (let i = 0; i < w.length; i++) assert.ok(Math.abs(g[i] - w[i]) <= 1e-4 * scale, `${name}[${i}]: ${g[i]} vs ${w[i]}`);
      }
      tf.dispose([...Object.values(got.grads), ...Object.values(want.grads)]);
    }
    model.dispose();
  });
}

test("the objective's cases are exercised: ratios inside and outside the clip, capped importance weights", () => {
  const cfg = CASES[1][1];
  const packed = packSteps(steps(13, 5, true));
  const terms = positionTerms(packed, cfg.ratio, cfg.importanceCap);
  assert.deepEqual([...terms.positions], [...lossPositions(packed)]);
  assert.ok(terms.importance.some((r) => r === cfg.importanceCap) && terms.importance.some((r, k) => terms.action[k] && r < cfg.importanceCap));
  // Log-probs moved by ±0.1 from the old ones: ratios of e^±0.1, beyond a clip of 0.05 on both sides.
  const P = terms.positions.length;
  const moved = Float32Array.from(terms.oldLogProbs, (x, k) => x + (k % 2 ? 0.1 : -0.1));
  const noKl = { ...cfg, klCoef: 0 };
  const o = ppoObjective(moved, new Float32Array(P), new Float32Array(P), terms, noKl, { steps: packed.B, tokens: P, valuePositions: P });
  assert.ok(o.stats.clipFraction > 0.9, `clip fraction ${o.stats.clipFraction}`);
  // Beyond the clip min takes the clipped side where the advantage pushes further out: no gradient there.
  assert.ok(o.dLogProbs.some((d) => d === 0) && o.dLogProbs.some((d) => d !== 0), "some clipped tokens pass no policy gradient, the others do");
});
