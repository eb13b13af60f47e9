// Small pieces shared by the estimators: broadcasting a per-step score to its action tokens and the
// group statistics of the critic-free baselines (GRPO, GiGPO, RLOO).
import type { StepRecord, Trajectory } from "../../core/trajectory.ts";

/** Every action token of step t carries the step's score. scores: [T] → [T][L_t]. */
export function broadcastToTokens(steps: readonly StepRecord[], scores: ArrayLike<number>): Float32Array[] {
  return steps.map((s, t) => new Float32Array(s.actionIds.length).fill(scores[t]));
}

/** One score per trajectory copied to every step: [T] filled with `score`. */
export function constantSteps(traj: Trajectory, score: number): Float32Array {
  return new Float32Array(traj.steps.length).fill(score);
}

/** Indices of `keys` grouped by equal key, in first-seen order. */
export function groupBy(keys: readonly string[]): number[][] {
  const groups = new Map<string, number[]>();
  keys.forEach((k, i) => {
    const g = groups.get(k);
    if (g) g.push(i);
    else groups.set(k, [i]);
  });
  return [...groups.values()];
}

/** Mean and population standard deviation (divide by n), in float64. */
export function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const n = xs.length;
  if (n === 0) return { mean: 0, std: 0 };
  let sum = 0;
  for (const x of xs) sum += x;
  const mean = sum / n;
  let sq = 0;
  for (const x of xs) sq += (x - mean) * (x - mean);
  return { mean, std: Math.sqrt(sq / n) };
}

/** ε in (x − mean_G) / (std_G + ε), as in GRPO/GiGPO; a group with equal scores gives 0, not NaN. */
export const GROUP_EPS = 1e-6;

/**
 * Group-normalised scores: (x_i − mean_G x) / (std_G x + ε) for each group G of indices. A group of one
 * has no baseline to compare against, so its member gets 0 (verl instead uses mean 0, std 1 there, which
 * would train on the raw score).
 */
export function groupNormalise(xs: readonly number[], groups: readonly number[][]): Float64Array {
  const out = new Float64Array(xs.length);
  for (const g of groups) {
    if (g.length < 2) continue;
    const { mean, std } = meanStd(g.map((i) => xs[i]));
    for (const i of g) out[i] = (xs[i] - mean) / (std + GROUP_EPS);
  }
  return out;
}
