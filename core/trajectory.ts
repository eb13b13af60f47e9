// What a rollout produces and the learner consumes. Token-in/token-out: workers send the exact token
// ids they generated and their behaviour log-probs; nothing is re-tokenised from text on the learner.

/** One agent decision: context c_t, action a_t = y_{t,1..L_t}, reward r_t. */
export interface StepRecord {
  /** Context tokens c_t (rebuilt by the environment each step). Shape [Lc]. */
  contextIds: Int32Array;
  /** Action tokens y_{t,1..L_t}, ending with <eos-step> unless cut at maxStepTokens. Shape [L]. */
  actionIds: Int32Array;
  /** Behaviour-policy log π_b(y_{t,i} | c_t, y_{t,<i}). Shape [L]. */
  logProbs: Float32Array;
  /** r_t: the sum of rewards credited inside step t. */
  reward: number;
  /** done_t: the episode terminated after this step (not set on truncation). */
  done: boolean;
  /** Environment-state key before the step (GiGPO anchor states). */
  stateKey: string;
}

export interface Trajectory {
  trajId: string;
  workerId: string;
  policyVersion: number;
  taskId: string;
  /** Episodes of the same task share a groupId (GRPO/GiGPO/RLOO groups). */
  groupId: string;
  family: string;
  steps: StepRecord[];
  /** Ran out of step budget without terminating; the learner bootstraps V(c_T). */
  truncated: boolean;
  /** c_T, the context after the last step, present when truncated (for the bootstrap value). */
  bootstrapContextIds?: Int32Array;
  success: boolean;
}

export function totalReturn(t: Trajectory): number {
  let sum = 0;
  for (const s of t.steps) sum += s.reward;
  return sum;
}
