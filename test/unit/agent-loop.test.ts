import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../common/rng.ts";
import type { Decoder } from "../../learner/model.ts";
import { EOS_STEP } from "../../learner/tokenizer.ts";
import { generateSteps, sampleTokens, type TokenPolicy } from "../../workers/agent-loop.ts";

test("sampleTokens: greedy picks the argmax; log-probs are log-softmax(logits / T)", () => {
  const logits = Float32Array.of(0, 2, 1, /* row 2 */ 3, 0, 0);
  const { ids, logProbs } = sampleTokens(logits, 3, 2, 1, true, new Rng(1));
  assert.deepEqual([...ids], [1, 0]);
  const z = Math.log(Math.exp(0) + Math.exp(2) + Math.exp(1));
  assert.ok(Math.abs(logProbs[0] - (2 - z)) < 1e-6);
  const hot = sampleTokens(Float32Array.of(0, 2, 1), 3, 1, 2, true, new Rng(1));
  const z2 = Math.log(Math.exp(0) + Math.exp(1) + Math.exp(0.5));
  assert.ok(Math.abs(hot.logProbs[0] - (1 - z2)) < 1e-6, "temperature divides the logits");
});

test("sampleTokens: sampling follows the distribution and is reproducible from the seed", () => {
  const logits = Float32Array.of(Math.log(0.7), Math.log(0.2), Math.log(0.1));
  const counts = [0, 0, 0];
  const rng = new Rng(42);
  for (let i = 0; i < 20000; i++) counts[sampleTokens(logits, 3, 1, 1, false, rng).ids[0]]++;
  assert.ok(Math.abs(counts[0] / 20000 - 0.7) < 0.02 && Math.abs(counts[2] / 20000 - 0.1) < 0.02, `${counts}`);
  const a = sampleTokens(logits, 3, 1, 1, false, new Rng(5)).ids[0];
  const b = sampleTokens(logits, 3, 1, 1, false, new Rng(5)).ids[0];
  assert.equal(a, b);
});

/** A policy that deterministically writes a fixed script per row (one-hot logits). */
function scriptedPolicy(scripts: number[][], vocabSize: number): TokenPolicy {
  return {
    vocabSize,
    decoder(contexts: Int32Array[]): Decoder {
      let t = 0;
      return {
        logits() {
          const out = new Float32Array(contexts.length * vocabSize).fill(-50);
          scripts.forEach((s, b) => {
            out[b * vocabSize + (s[t] ?? 7)] = 50;
          });
          return out;
        },
        push() {
          t++;
        },
        dispose() {},
      };
    },
  };
}

test("generateSteps segments each row at <eos-step> and cuts rows at maxStepTokens", () => {
  const policy = scriptedPolicy(
    [
      [9, 10, EOS_STEP, 11],
      [9, 9, 9, 9, 9, 9],
    ],
    12,
  );
  const out = generateSteps(policy, [Int32Array.of(1), Int32Array.of(1, 3)], { maxStepTokens: 4, temperature: 1, greedy: true }, new Rng(0));
  assert.deepEqual([...out[0].actionIds], [9, 10, EOS_STEP]);
  assert.equal(out[0].logProbs.length, 3);
  assert.deepEqual([...out[1].actionIds], [9, 9, 9, 9], "cut at maxStepTokens without <eos-step>");
  for (const lp of out[0].logProbs) assert.ok(lp > -1e-6 && lp <= 0);
});
