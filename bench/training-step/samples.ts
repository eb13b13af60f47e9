// The synthetic step samples the training-step benchmarks run on: ragged like textworld's, deterministic.
import type { StepSample } from "../../learner/step-batch.ts";

/** `n` cloning steps, contexts of 40–100 tokens spread evenly, 15 action tokens: 55–115 in all (textworld's range). */
export function raggedSteps(n = 32, vocab = 125): StepSample[] {
  return Array.from({ length: n }, (_, i) => {
    const context = 40 + Math.round((i * 60) / (n - 1));
    return {
      trajId: `t${i}`,
      workerId: "w",
      policyVersion: 0,
      contextIds: Int32Array.from({ length: context }, (_, j) => 1 + ((i * 7 + j * 3) % (vocab - 1))),
      actionIds: Int32Array.from({ length: 15 }, (_, j) => 1 + ((i + j * 5) % (vocab - 1))),
      behaviourLogProbs: new Float32Array(15),
      oldLogProbs: new Float32Array(15),
      advantages: new Float32Array(15),
      valueTargets: new Float32Array(0),
      oldValues: new Float32Array(0),
      valueOffsets: new Int32Array(0),
    };
  });
}

/** The same steps scored for PPO: advantages in {−1, 0, 1}, one value target per step. */
export function scoredSteps(n: number, vocab: number): StepSample[] {
  return raggedSteps(n, vocab).map((x, i) => ({
    ...x,
    advantages: new Float32Array(x.actionIds.length).fill((i % 3) - 1),
    valueTargets: Float32Array.of(i % 2),
    oldValues: Float32Array.of(0),
    valueOffsets: Int32Array.of(0),
  }));
}
