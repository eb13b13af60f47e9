import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../common/rng.ts";
import type { Decoder } from "../../learner/model.ts";
import { EOS_STEP, Tokenizer } from "../../learner/tokenizer.ts";
import { type EpisodeRequest, generateSteps, runEpisodes, sampleTokens, type TokenPolicy } from "../../workers/agent-loop.ts";
import type { Environment, Task } from "../../workers/environment.ts";

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

/** Episodes that end after `lengths[i]` steps; `onStep(t)` runs inside every step call at step index t. */
function countingEnvironment(lengths: number[], onStep: (t: number) => void): { env: Environment; requests: EpisodeRequest[] } {
  const task = (i: number): Task => ({ id: `t${i}`, family: "f", split: "train", prompt: ["a"], answer: "a" });
  let started = 0;
  const env: Environment = {
    name: "counting",
    vocabulary: () => ["a"],
    families: { train: ["f"], ood: [] },
    sampleTask: () => task(0),
    start: async (t) => {
      const len = lengths[started++];
      let steps = 0;
      return {
        task: t,
        context: () => ["a"],
        stateKey: () => `${t.id}:${steps}`,
        step: async () => {
          onStep(steps);
          steps++;
          const done = steps >= len;
          return { observation: ["a"], reward: done ? 1 : 0, done, success: done };
        },
      };
    },
    demonstrator: () => async () => ["a"],
  };
  return { env, requests: lengths.map((_, i) => ({ task: task(i), groupId: `g${i}`, trajId: `e${i}` })) };
}

const eosPolicy = scriptedPolicy([[EOS_STEP], [EOS_STEP], [EOS_STEP]], 8);

test("runEpisodes stopped mid-batch returns only complete episodes: finished, or cut by the step budget", async () => {
  const stop = new AbortController();
  const opts = { workerId: "w", policyVersion: 3, maxStepTokens: 4, contextLength: 32, temperature: 1, greedy: true, signal: stop.signal };
  // Stopped during the second step: e0 ended at step 1, e1 ends in the step under way, e2 (4 steps) is cut off.
  const a = countingEnvironment([1, 2, 4], (t) => t === 1 && stop.abort());
  const out = await runEpisodes(a.env, a.requests, eosPolicy, new Tokenizer(["a"]), new Rng(1), { ...opts, maxSteps: 4 });
  assert.deepEqual(
    out.map((t) => [t.trajId, t.steps.length, t.truncated]),
    [
      ["e0", 1, false],
      ["e1", 2, false],
    ],
  );
  assert.ok(out.every((t) => t.steps.at(-1)?.done && t.policyVersion === 3));
  // With a budget of 2 steps, the unfinished episode has used its whole budget in that step: complete (truncated).
  const stop2 = new AbortController();
  const b = countingEnvironment([1, 4], (t) => t === 1 && stop2.abort());
  const out2 = await runEpisodes(b.env, b.requests, eosPolicy, new Tokenizer(["a"]), new Rng(1), { ...opts, signal: stop2.signal, maxSteps: 2 });
  assert.deepEqual(
    out2.map((t) => [t.trajId, t.steps.length, t.truncated]),
    [
      ["e0", 1, false],
      ["e1", 2, true],
    ],
  );
  // Not stopped: every episode comes back, the long one truncated by the budget.
  const c = countingEnvironment([1, 4], () => {});
  const out3 = await runEpisodes(c.env, c.requests, eosPolicy, new Tokenizer(["a"]), new Rng(1), { ...opts, signal: undefined, maxSteps: 3 });
  assert.deepEqual(
    out3.map((t) => [t.trajId, t.steps.length, t.truncated]),
    [
      ["e0", 1, false],
      ["e1", 3, true],
    ],
  );
});
