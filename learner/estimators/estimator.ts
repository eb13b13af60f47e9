// The advantage-estimator contract (verl's core_algos in spirit): every baseline plugs into the same
// learner, so `algorithm.estimator` is the only thing that differs between two runs.
import type { Trajectory } from "../../core/trajectory.ts";

/** A trajectory with the critic's values, computed by the learner before estimation. */
export interface ValuedTrajectory {
  traj: Trajectory;
  /** V(c_t) for t = 0..T-1, read at the last context token of each step. Shape [T]. */
  stepValues: Float32Array;
  /**
   * Per action token i of step t: the value of the prefix before y_{t,i} (read at the position just
   * before it). tokenValues[t][0] === stepValues[t]. Shape [T][L_t]. Only token-level estimators read it.
   */
  tokenValues: Float32Array[];
  /** V(c_T) for a truncated episode; 0 when it terminated. */
  bootstrapValue: number;
}

export interface EstimatorConfig {
  gamma: number;
  lambda: number;
}

/** Per-trajectory result; every action token of step t is trained with tokenAdvantages[t][i]. */
export interface Advantages {
  /** Â_t per step. Shape [T]. For token-level estimators: the mean over the step's tokens. */
  stepAdvantages: Float32Array;
  /** Advantage per action token. Shape [T][L_t]. */
  tokenAdvantages: Float32Array[];
  /** R̂_t = Â_t + V(c_t), the value target at step boundaries (step-level critics). Shape [T]. */
  stepReturns?: Float32Array;
  /** Value target per action token (token-level critics). Shape [T][L_t]. */
  tokenReturns?: Float32Array[];
}

export interface AdvantageEstimator {
  readonly name: string;
  /** Whether the learner must compute values and train a critic. */
  readonly critic: "step" | "token" | "none";
  /** Whitening unit for the learner's batch normalisation of advantages ("none": already normalised). */
  readonly whitenOver: "steps" | "tokens" | "none";
  /** Defaults for γ and λ when the job leaves them out. */
  readonly defaults: EstimatorConfig;
  /** Needs G episodes per task (rollout.groupSize > 1). */
  readonly grouped: boolean;
  /** Computes advantages for a batch; one result per input trajectory, in order. */
  estimate(batch: ValuedTrajectory[], config: EstimatorConfig): Advantages[];
}
