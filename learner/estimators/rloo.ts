// RLOO (REINFORCE leave-one-out): each episode's baseline is the mean return of the other episodes of
// its group, so the baseline is independent of the sample it corrects. No critic.
import { totalReturn } from "../../core/trajectory.ts";
import type { AdvantageEstimator, Advantages, ValuedTrajectory } from "./estimator.ts";
import { broadcastToTokens, constantSteps, groupBy } from "./ops.ts";

/**
 * Â_i = R_i − mean_{j≠i} R_j = R_i − (Σ_G R − R_i) / (G − 1) within each group (traj.groupId). A group of
 * one has no other episode to form a baseline from → 0. Shape [B].
 */
export function leaveOneOutAdvantages(batch: readonly ValuedTrajectory[]): Float64Array {
  const returns = batch.map((v) => totalReturn(v.traj));
  const out = new Float64Array(batch.length);
  for (const g of groupBy(batch.map((v) => v.traj.groupId))) {
    if (g.length < 2) continue;
    let sum = 0;
    for (const i of g) sum += returns[i];
    for (const i of g) out[i] = returns[i] - (sum - returns[i]) / (g.length - 1);
  }
  return out;
}

export const rlooEstimator: AdvantageEstimator = {
  name: "rloo",
  critic: "none",
  // Our choice: whiten over steps like step-gae. Leave-one-out scores are on the reward's scale, so
  // whitening lets one learning rate serve the whole estimator grid; their group mean is already 0, so
  // the mean shift is small. (verl leaves RLOO unwhitened; set algorithm.whitenAdvantages: false for that.)
  whitenOver: "steps",
  // γ, λ are unused: the score is the undiscounted episode return.
  defaults: { gamma: 1.0, lambda: 1.0 },
  grouped: true,
  estimate(batch): Advantages[] {
    const scores = leaveOneOutAdvantages(batch);
    return batch.map((v, b) => {
      const stepAdvantages = constantSteps(v.traj, scores[b]);
      return { stepAdvantages, tokenAdvantages: broadcastToTokens(v.traj.steps, stepAdvantages) };
    });
  },
};
