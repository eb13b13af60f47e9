// Intake validation: what every trajectory must satisfy before the learner may train on it. The codec only
// checks that a message is well-formed bytes; a well-formed trajectory can still be poison — a NaN reward
// makes the gradient NaN (the optimiser refuses the update and the learner exits), a token id outside the
// vocabulary or a step longer than the context makes the model throw. Redelivered after a restart, the same
// message would crash the learner again, so both runtimes check every trajectory here when they take it in
// and set aside (dead-letter) the ones that fail, instead of training on them.
import type { StepRecord, Trajectory } from "../core/trajectory.ts";

/**
 * Why a trajectory was refused. All but "policy-version-ahead" mean the trajectory is unusable whatever the
 * learner's state; "policy-version-ahead" is reported last, only for an otherwise sound trajectory, because
 * the distributed learner expects it after a restore (versions published before a crash and lost with it)
 * and drops such samples as stale rather than as poison.
 */
export type TrajectoryCheckCause = "non-finite" | "token-out-of-range" | "too-long" | "inconsistent" | "bad-policy-version" | "policy-version-ahead";

export const TRAJECTORY_CHECK_CAUSES: readonly TrajectoryCheckCause[] = [
  "non-finite",
  "token-out-of-range",
  "too-long",
  "inconsistent",
  "bad-policy-version",
  "policy-version-ahead",
];

export interface IntakeLimits {
  /** Token ids must lie in [0, vocabSize). */
  vocabSize: number;
  /** Context + action tokens of a step (and a bootstrap context) must fit the model. */
  contextLength: number;
  /** The learner's current policy version: no sample can come from a newer one. */
  learnerVersion: number;
}

export interface TrajectoryProblem {
  cause: TrajectoryCheckCause;
  /** Names the trajectory, the step and the offending value. */
  message: string;
}

/** The first problem found in `t`, or undefined when it may be trained on. Pure: no I/O, no mutation. */
export function checkTrajectory(t: Trajectory, limits: IntakeLimits): TrajectoryProblem | undefined {
  const fail = (cause: TrajectoryCheckCause, what: string): TrajectoryProblem => ({ cause, message: `trajectory ${t.trajId}: ${what}` });
  if (!Number.isSafeInteger(t.policyVersion) || t.policyVersion < 0) {
    return fail("bad-policy-version", `policy version ${t.policyVersion} is not a non-negative integer`);
  }
  if (!Array.isArray(t.steps) || t.steps.length === 0) return fail("inconsistent", "has no steps");
  for (let i = 0; i < t.steps.length; i++) {
    const problem = checkStep(t.steps[i], limits);
    if (problem) return fail(problem.cause, `step ${i}: ${problem.message}`);
  }
  if (t.bootstrapContextIds) {
    const boot = t.bootstrapContextIds;
    const bad = firstOutOfRange(boot, limits.vocabSize);
    if (bad !== undefined) return fail("token-out-of-range", `bootstrap context token ${bad} is outside the vocabulary [0, ${limits.vocabSize})`);
    if (boot.length > limits.contextLength) {
      return fail("too-long", `bootstrap context of ${boot.length} tokens exceeds contextLength ${limits.contextLength}`);
    }
  }
  if (t.policyVersion > limits.learnerVersion) {
    return fail("policy-version-ahead", `policy version ${t.policyVersion} is newer than the learner's ${limits.learnerVersion}`);
  }
  return undefined;
}

function checkStep(s: StepRecord, limits: IntakeLimits): { cause: TrajectoryCheckCause; message: string } | undefined {
  if (!Number.isFinite(s.reward)) return { cause: "non-finite", message: `reward is ${s.reward}` };
  // Scoring reads the output at the context's last position: a step needs at least one context token, and
  // one log-prob for each action token (the importance ratio pairs them up).
  if (s.contextIds.length === 0) return { cause: "inconsistent", message: "empty context" };
  if (s.actionIds.length === 0) return { cause: "inconsistent", message: "empty action" };
  if (s.logProbs.length !== s.actionIds.length) {
    return { cause: "inconsistent", message: `${s.logProbs.length} log-probs for ${s.actionIds.length} action tokens` };
  }
  for (let i = 0; i < s.logProbs.length; i++) {
    if (!Number.isFinite(s.logProbs[i])) return { cause: "non-finite", message: `log-prob ${i} is ${s.logProbs[i]}` };
  }
  const badContext = firstOutOfRange(s.contextIds, limits.vocabSize);
  if (badContext !== undefined)
    return { cause: "token-out-of-range", message: `context token ${badContext} is outside the vocabulary [0, ${limits.vocabSize})` };
  const badAction = firstOutOfRange(s.actionIds, limits.vocabSize);
  if (badAction !== undefined) return { cause: "token-out-of-range", message: `action token ${badAction} is outside the vocabulary [0, ${limits.vocabSize})` };
  const length = s.contextIds.length + s.actionIds.length;
  if (length > limits.contextLength) {
    return {
      cause: "too-long",
      message: `${s.contextIds.length} context + ${s.actionIds.length} action tokens = ${length} exceed contextLength ${limits.contextLength}`,
    };
  }
  return undefined;
}

function firstOutOfRange(ids: Int32Array, vocabSize: number): number | undefined {
  for (const id of ids) if (id < 0 || id >= vocabSize) return id;
  return undefined;
}

export interface Rejected {
  traj: Trajectory;
  problem: TrajectoryProblem;
}

/** Splits a batch into what may be trained on and what was refused (with why), keeping the order. */
export function partitionTrajectories(batch: Trajectory[], limits: IntakeLimits): { accepted: Trajectory[]; rejected: Rejected[] } {
  const accepted: Trajectory[] = [];
  const rejected: Rejected[] = [];
  for (const traj of batch) {
    const problem = checkTrajectory(traj, limits);
    if (problem) rejected.push({ traj, problem });
    else accepted.push(traj);
  }
  return { accepted, rejected };
}

/** Per-cause counts, every cause present (zero), for accounting and metrics. */
export function emptyCauseCounts(): Record<TrajectoryCheckCause, number> {
  return Object.fromEntries(TRAJECTORY_CHECK_CAUSES.map((c) => [c, 0])) as Record<TrajectoryCheckCause, number>;
}
