// GiGPO (verl-agent, "Group-in-Group Policy Optimization"): GRPO's episode-level group advantage plus a
// step-level one. Steps of the same group (task) that start from the same environment state (equal
// stateKey: an "anchor state") are compared by their discounted return from that step, which credits
// the individual decision without a critic.
//
// Choices (verl-agent offers both, configurable there): scores are mean/std-normalised at both levels
// ("mean_std_norm", population std, ε = 1e-6; verl-agent's default is "mean_norm"), each episode counts
// once at the episode level (as GRPO), and a singleton group → 0 (verl uses mean 0, std 1 there).
import type { Trajectory } from "../../core/trajectory.ts";
import type { AdvantageEstimator, Advantages, ValuedTrajectory } from "./estimator.ts";
import { episodeGroupAdvantages } from "./grpo.ts";
import { broadcastToTokens, groupBy, groupNormalise } from "./ops.ts";

/** ω in Â_t = A_episode + ω · A_step (verl-agent's step_advantage_w). */
export const STEP_ADVANTAGE_WEIGHT = 1.0;

/** Discounted return from each step to the episode's end: G_t = r_t + γ G_{t+1}. Shape [T]. */
export function discountedReturns(traj: Trajectory, gamma: number): Float64Array {
  const T = traj.steps.length;
  const out = new Float64Array(T);
  let running = 0;
  for (let t = T - 1; t >= 0; t--) {
    running = traj.steps[t].reward + gamma * running;
    out[t] = running;
  }
  return out;
}

/**
 * Step-level group advantage: every step of the batch gets (G_t − mean_S G) / (std_S G + ε) over its
 * anchor group S = the steps with the same (groupId, stateKey). Shape [B][T_b].
 */
export function anchorStepAdvantages(batch: readonly ValuedTrajectory[], gamma: number): Float64Array[] {
  const returns: number[] = []; // [Σ T_b], batch steps flattened in order
  const keys: string[] = [];
  for (const { traj } of batch) {
    returns.push(...discountedReturns(traj, gamma));
    // JSON keeps the pair unambiguous whatever characters the ids contain.
    for (const s of traj.steps) keys.push(JSON.stringify([traj.groupId, s.stateKey]));
  }
  const flat = groupNormalise(returns, groupBy(keys));
  const out: Float64Array[] = [];
  let k = 0;
  for (const { traj } of batch) {
    out.push(flat.slice(k, k + traj.steps.length));
    k += traj.steps.length;
  }
  return out;
}

export const gigpoEstimator: AdvantageEstimator = {
  name: "gigpo",
  critic: "none",
  // Both terms are group-normalised already.
  whitenOver: "none",
  // γ = 0.95 per step for the step-level return, as in verl-agent's GiGPO recipes; λ is unused.
  defaults: { gamma: 0.95, lambda: 1.0 },
  grouped: true,
  estimate(batch, { gamma }): Advantages[] {
    const episode = episodeGroupAdvantages(batch); // [B]
    const step = anchorStepAdvantages(batch, gamma); // [B][T_b]
    return batch.map((v, b) => {
      const stepAdvantages = Float32Array.from(step[b], (a) => episode[b] + STEP_ADVANTAGE_WEIGHT * a);
      return { stepAdvantages, tokenAdvantages: broadcastToTokens(v.traj.steps, stepAdvantages) };
    });
  },
};
