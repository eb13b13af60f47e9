// Token-level PPO as in RLHF/RLVR (the paper's "PPO" baseline, and the "without step GAE" ablation):
// GAE over the episode's action tokens, flattened across steps. Observation tokens are context, so they
// are not in the sequence at all; the value after step t's last action token is V at step t+1's first
// action position, which already includes the observation.
import type { Trajectory } from "../../core/trajectory.ts";
import type { AdvantageEstimator, Advantages, ValuedTrajectory } from "./estimator.ts";
import { stepGae } from "./step-gae.ts";

/**
 * The GAE recursion of stepGae over a flattened token sequence (γ, λ discount per token):
 * rewards, dones: [N]; values: [N + 1] with values[N] = the bootstrap value.
 */
export function tokenGae(
  rewards: ArrayLike<number>,
  values: ArrayLike<number>,
  dones: ArrayLike<boolean | number>,
  gamma: number,
  lambda: number,
): { advantages: Float32Array; returns: Float32Array } {
  return stepGae(rewards, values, dones, gamma, lambda);
}

/** The episode as one token sequence: per-token reward, done and value, plus each step's slice. */
interface FlatTokens {
  rewards: Float64Array; // [N]
  dones: Uint8Array; // [N]
  values: Float64Array; // [N + 1]
  offsets: number[]; // [T + 1]: step t owns tokens offsets[t] .. offsets[t+1]−1
}

/**
 * r_t goes on the last action token of step t (0 elsewhere) and done_t on the same token, so the final
 * token of a terminated episode is done. A step without action tokens has nowhere to put its reward:
 * it goes to the most recent action token before it, or (if none yet) the next one. An episode without
 * any action token has nothing to credit.
 */
function flattenActionTokens(v: ValuedTrajectory): FlatTokens {
  const steps = v.traj.steps;
  const offsets = [0];
  for (const s of steps) offsets.push(offsets[offsets.length - 1] + s.actionIds.length);
  const N = offsets[steps.length];
  const rewards = new Float64Array(N);
  const dones = new Uint8Array(N);
  const values = new Float64Array(N + 1);
  let pendingReward = 0; // rewards of leading steps that have no action tokens
  steps.forEach((s, t) => {
    const L = s.actionIds.length;
    values.set(v.tokenValues[t].subarray(0, L), offsets[t]);
    if (L > 0) {
      rewards[offsets[t]] += pendingReward;
      pendingReward = 0;
    }
    // For an empty step this is the previous step's last token, i.e. the most recent action token.
    const last = offsets[t + 1] - 1;
    if (last < 0) {
      pendingReward += s.reward; // a done flag here would end an episode that has not acted yet: dropped
      return;
    }
    rewards[last] += s.reward;
    if (s.done) dones[last] = 1;
  });
  values[N] = v.bootstrapValue;
  return { rewards, dones, values, offsets };
}

function sliceSteps(traj: Trajectory, flat: Float32Array, offsets: number[]): Float32Array[] {
  return traj.steps.map((_, t) => flat.slice(offsets[t], offsets[t + 1]));
}

/** Â_t of a step = the mean of its token advantages (0 for a step without action tokens). */
function stepMeans(tokenAdvantages: Float32Array[]): Float32Array {
  return Float32Array.from(tokenAdvantages, (a) => {
    let sum = 0;
    for (const x of a) sum += x;
    return a.length > 0 ? sum / a.length : 0;
  });
}

export const tokenGaeEstimator: AdvantageEstimator = {
  name: "token-gae",
  critic: "token",
  whitenOver: "tokens",
  // RLHF practice (per token): no discount, λ = 0.95.
  defaults: { gamma: 1.0, lambda: 0.95 },
  grouped: false,
  estimate(batch, { gamma, lambda }): Advantages[] {
    return batch.map((v) => {
      const flat = flattenActionTokens(v);
      const { advantages, returns } = tokenGae(flat.rewards, flat.values, flat.dones, gamma, lambda);
      const tokenAdvantages = sliceSteps(v.traj, advantages, flat.offsets);
      return { stepAdvantages: stepMeans(tokenAdvantages), tokenAdvantages, tokenReturns: sliceSteps(v.traj, returns, flat.offsets) };
    });
  },
};
