import assert from "node:assert/strict";
import { test } from "node:test";
import { InMemoryBus } from "../../runtime/in-memory-bus.ts";
import { parseJob } from "../../crds/job-spec.ts";
import { Rng } from "../../core/rng.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import { TrajectoryTooLargeError } from "../../core/trajectory-codec.ts";
import type { Decoder } from "../../policy/model.ts";
import { EOS_STEP, Tokenizer } from "../../policy/tokenizer.ts";
import { generateSteps, sampleTokens, type TokenPolicy } from "../../policy/decoding.ts";
import { type EpisodeRequest, runEpisodes } from "../../workers/agent-loop.ts";
import { type Environment, SPLITS, type Task } from "../../envs/environment.ts";
import { RolloutWorker } from "../../workers/rollout-worker.ts";

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
    splits: SPLITS,
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

/** Episodes of `tasks`, one step each unless `fault(taskId, n)` says the n-th episode of that task meets an environment fault. */
function faultyEnvironment(fault: (taskId: string, nth: number) => boolean): Environment {
  const task = (i: number): Task => ({ id: `t${i}`, family: "f", split: "train", prompt: ["a"], answer: "a" });
  let sampled = 0;
  const starts = new Map<string, number>();
  return {
    name: "faulty",
    vocabulary: () => ["a"],
    families: { train: ["f"], ood: [] },
    splits: SPLITS,
    sampleTask: () => task(sampled++),
    start: async (t) => {
      const nth = starts.get(t.id) ?? 0;
      starts.set(t.id, nth + 1);
      return {
        task: t,
        context: () => ["a"],
        stateKey: () => t.id,
        step: async () =>
          fault(t.id, nth)
            ? { observation: ["a"], reward: 0, done: false, success: false, error: "POST /step: HTTP 503", fault: true }
            : { observation: ["a"], reward: 1, done: true, success: true },
      };
    },
    demonstrator: () => async () => ["a"],
  };
}

const loopOpts = { workerId: "w", policyVersion: 0, maxSteps: 3, maxStepTokens: 4, contextLength: 32, temperature: 1, greedy: true };

test("runEpisodes: an episode an environment fault ends is reported and never returned; a malformed action is the agent's", async () => {
  const env = faultyEnvironment((id) => id === "t1");
  const requests = [0, 1, 2].map((i) => ({ task: env.sampleTask(new Rng(1), "train"), groupId: `g${i}`, trajId: `e${i}` }));
  const faults: string[] = [];
  const out = await runEpisodes(env, requests, eosPolicy, new Tokenizer(["a"]), new Rng(1), {
    ...loopOpts,
    onFault: (req, cause) => faults.push(`${req.trajId}: ${cause}`),
  });
  assert.deepEqual(
    out.map((t) => t.trajId),
    ["e0", "e2"],
  );
  assert.deepEqual(faults, ["e1: POST /step: HTTP 503"], "reported once: the episode stops at the fault");

  // An error without `fault` (the environment refused the agent's action) is an ordinary step, trained on.
  const picky: Environment = {
    ...env,
    start: async (t) => ({
      task: t,
      context: () => ["a"],
      stateKey: () => t.id,
      step: async () => ({ observation: ["a"], reward: 0, done: true, success: false, error: "malformed action" }),
    }),
  };
  const scored = await runEpisodes(picky, requests.slice(0, 1), eosPolicy, new Tokenizer(["a"]), new Rng(1), {
    ...loopOpts,
    onFault: () => assert.fail("not a fault"),
  });
  assert.equal(scored.length, 1);
  assert.equal(scored[0].success, false);
});

test("RolloutWorker: a group with a faulted episode is excluded whole and counted; an oversized episode is dropped, not fatal", async () => {
  const spec = parseJob(
    { apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "w" }, spec: { rollout: { groupSize: 2, episodesPerUpdate: 4 } } },
    "t",
  ).spec;
  // Group 0 (task t0) is clean; the first episode of group 1 (task t1) meets a fault.
  const worker = new RolloutWorker(
    "w0",
    faultyEnvironment((id, nth) => id === "t1" && nth === 0),
    new Tokenizer(["a"]),
    spec,
    32,
    1,
  );
  const lines: string[] = [];
  worker.log = (l) => lines.push(l);
  const bus = new InMemoryBus();
  const policy = scriptedPolicy([[EOS_STEP], [EOS_STEP], [EOS_STEP], [EOS_STEP]], 8);
  const published = await worker.produce(2, policy, 0, bus);
  assert.deepEqual(
    published.map((t) => t.groupId),
    ["w0.0.g0", "w0.0.g0"],
  );
  assert.equal((await bus.fetch(10, 0)).length, 2, "only the clean group reached the bus");
  assert.deepEqual(
    { episodes: worker.stats.episodes, envFaults: worker.stats.envFaults, excludedForFaults: worker.stats.excludedForFaults },
    { episodes: 2, envFaults: 1, excludedForFaults: 2 },
  );
  assert.ok(
    lines.some((l) => l.includes("environment fault, group w0.0.g2 excluded from training: episode w0.0.e2: POST /step: HTTP 503")),
    lines.join("\n"),
  );

  // The bus refuses one trajectory as too large: that one is dropped, the rest published.
  const clean = new RolloutWorker(
    "w1",
    faultyEnvironment(() => false),
    new Tokenizer(["a"]),
    spec,
    32,
    1,
  );
  clean.log = (l) => lines.push(l);
  const sent: string[] = [];
  const refusing = {
    publish: async (t: Trajectory) => {
      if (t.trajId === "w1.0.e1") throw new TrajectoryTooLargeError(t.trajId, 2_000_000, 1_048_576);
      sent.push(t.trajId);
    },
    fetch: async () => [],
    close: async () => {},
  };
  const out = await clean.produce(2, policy, 0, refusing);
  assert.deepEqual(sent, ["w1.0.e0", "w1.0.e2", "w1.0.e3"]);
  assert.deepEqual(
    out.map((t) => t.trajId),
    sent,
  );
  assert.equal(clean.stats.oversized, 1);
  assert.ok(
    lines.some((l) => l.includes("trajectory w1.0.e1 is 2000000 bytes compressed (with headers), above the NATS server's max_payload of 1048576 bytes")),
  );
});
