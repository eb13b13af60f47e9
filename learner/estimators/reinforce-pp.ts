// REINFORCE++ as in the paper's baselines: no critic and no group; the episode return is copied to
// every step and token, and the learner whitens it over all steps of the batch (the global batch
// normalisation is REINFORCE++'s baseline).
import { totalReturn } from "../../core/trajectory.ts";
import type { AdvantageEstimator, Advantages } from "./estimator.ts";
import { broadcastToTokens, constantSteps } from "./ops.ts";

export const reinforcePlusPlusEstimator: AdvantageEstimator = {
  name: "reinforce++",
  critic: "none",
  whitenOver: "steps",
  // γ, λ are unused: one undiscounted score per trajectory (docs/algorithm.md, "Advantages").
  defaults: { gamma: 1.0, lambda: 1.0 },
  grouped: false,
  estimate(batch): Advantages[] {
    return batch.map(({ traj }) => {
      const stepAdvantages = constantSteps(traj, totalReturn(traj));
      return { stepAdvantages, tokenAdvantages: broadcastToTokens(traj.steps, stepAdvantages) };
    });
  },
};
