// GRPO: G episodes per task; each episode's return is compared with its group's, and the normalised
// score is broadcast to every action token. No critic.
import { totalReturn } from "../../core/trajectory.ts";
import type { AdvantageEstimator, Advantages, ValuedTrajectory } from "./estimator.ts";
import { broadcastToTokens, constantSteps, groupBy, groupNormalise } from "./ops.ts";

/**
 * Episode-level group advantage, one per trajectory: Â = (R − mean_G R) / (std_G R + ε), population std,
 * ε = 1e-6, groups by traj.groupId; a group of one → 0. Shape [B].
 */
export function episodeGroupAdvantages(batch: readonly ValuedTrajectory[]): Float64Array {
  const returns = batch.map((v) => totalReturn(v.traj));
  return groupNormalise(returns, groupBy(batch.map((v) => v.traj.groupId)));
}

export const grpoEstimator: AdvantageEstimator = {
  name: "grpo",
  critic: "none",
  // Already normalised within each group; batch whitening would undo the per-group scale.
  whitenOver: "none",
  // γ, λ are unused: the score is the undiscounted episode return.
  defaults: { gamma: 1.0, lambda: 1.0 },
  grouped: true,
  estimate(batch): Advantages[] {
    const scores = episodeGroupAdvantages(batch);
    return batch.map((v, b) => {
      const stepAdvantages = constantSteps(v.traj, scores[b]);
      return { stepAdvantages, tokenAdvantages: broadcastToTokens(v.traj.steps, stepAdvantages) };
    });
  },
};
