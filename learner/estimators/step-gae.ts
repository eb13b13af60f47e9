// StepPO's estimator (docs/algorithm.md, "Advantages"): GAE over steps, not tokens. γ and λ
// discount once per agent decision, so a delayed final reward reaches step 0 of a 5-step episode as
// γ^4 instead of γ^(#tokens).
import type { AdvantageEstimator, Advantages, ValuedTrajectory } from "./estimator.ts";
import { broadcastToTokens } from "./ops.ts";

/**
 * Generalised advantage estimation over one episode.
 *   δ_t = r_t + γ (1 − done_t) V(c_{t+1}) − V(c_t)
 *   Â_t = δ_t + γ λ (1 − done_t) Â_{t+1}
 *   R̂_t = Â_t + V(c_t)
 * rewards, dones: [T]; values: [T + 1], values[T] = bootstrap V(c_T), read only when step T−1 is not done
 * (a done step never bootstraps). Accumulates in float64 (JS numbers): with γ = λ = 1 over hundreds of
 * tokens a float32 running sum drifts.
 */
export function stepGae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  dones: ArrayLike<boolean | number>,
  gamma: number,
  lambda: number,
): { advantages: Float32Array; returns: Float32Array } {
  const T = rewards.length;
  if (values.length !== T + 1) throw new Error(`stepGae: values must have length T + 1 = ${T + 1} (got ${values.length})`);
  if (dones.length !== T) throw new Error(`stepGae: dones must have length T = ${T} (got ${dones.length})`);
  const advantages = new Float32Array(T); // [T]
  const returns = new Float32Array(T); // [T]
  let nextAdvantage = 0; // Â_{t+1}; its value past the end is irrelevant because done/bootstrap handle t = T−1
  for (let t = T - 1; t >= 0; t--) {
    const notDone = dones[t] ? 0 : 1;
    const vt = values[t];
    // (1 − done_t) zeroes both the bootstrap term and the recursion: nothing after a terminal step counts.
    const delta = rewards[t] + gamma * notDone * values[t + 1] - vt;
    const advantage = delta + gamma * lambda * notDone * nextAdvantage;
    advantages[t] = advantage;
    returns[t] = advantage + vt;
    nextAdvantage = advantage;
  }
  return { advantages, returns };
}

/** values[0..T−1] = V(c_t), values[T] = V(c_T) (the learner sets it to 0 for terminated episodes). */
function stepValuesWithBootstrap(v: ValuedTrajectory): Float64Array {
  const T = v.traj.steps.length;
  const values = new Float64Array(T + 1); // [T + 1]
  values.set(v.stepValues.subarray(0, T));
  values[T] = v.bootstrapValue;
  return values;
}

export const stepGaeEstimator: AdvantageEstimator = {
  name: "step-gae",
  critic: "step",
  whitenOver: "steps",
  // The paper's HotpotQA setting: γ = 0.99 per step, λ = 1.0 (Monte-Carlo return minus the step value).
  defaults: { gamma: 0.99, lambda: 1.0 },
  grouped: false,
  estimate(batch, { gamma, lambda }): Advantages[] {
    return batch.map((v) => {
      const steps = v.traj.steps;
      const { advantages, returns } = stepGae(
        steps.map((s) => s.reward),
        stepValuesWithBootstrap(v),
        steps.map((s) => s.done),
        gamma,
        lambda,
      );
      return { stepAdvantages: advantages, tokenAdvantages: broadcastToTokens(steps, advantages), stepReturns: returns };
    });
  },
};
