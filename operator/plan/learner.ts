// The learner: one pod at a time, named by incarnation (J-learner-<restart>). A failed incarnation is
// replaced by the next one until spec.runPolicy.backoffLimit is spent, as a batch/v1 Job's pods are; its
// success is the job's success. Each incarnation resumes from the checkpoint claim.
import type { V1Pod } from "@kubernetes/client-node";
import type { StepPOJobCondition } from "../../crds/steppojob-status.ts";
import { podIndex } from "../../crds/names.ts";
import { type Defaults, desiredLearnerPod, type JobObject, specHash } from "../desired.ts";
import { type ConditionChange, type Step, turnOff } from "./draft.ts";
import { active, failureReason, outdated, podPhase, terminating } from "./pods.ts";

export interface Incarnation {
  /** The current incarnation's index: restarts so far. */
  restarts: number;
  /** Its pod, when the cache holds it. */
  current?: V1Pod;
  /** The incarnation before it (kept as evidence when it failed), when the cache holds it. */
  previous?: V1Pod;
}

/**
 * The current incarnation is the highest index seen (failed incarnations are kept as evidence, which also
 * keeps the index monotonic when the job's status lags behind the cache).
 */
export function incarnation(job: string, learners: readonly V1Pod[], recorded: number): Incarnation {
  let restarts = recorded;
  for (const p of learners) restarts = Math.max(restarts, podIndex(job, "learner", p.metadata?.name ?? "") ?? 0);
  const at = (i: number) => learners.find((p) => podIndex(job, "learner", p.metadata?.name ?? "") === i);
  return { restarts, current: at(restarts), previous: restarts > 0 ? at(restarts - 1) : undefined };
}

/** Running off and Restarting on, for incarnation `next` replacing the failed `failed`. */
function restartingConditions(
  conditions: readonly StepPOJobCondition[],
  failed: V1Pod,
  next: string,
  restarts: number,
  backoffLimit: number,
): ConditionChange[] {
  return [
    ...turnOff(conditions, ["Running"], "LearnerFailed", `learner pod ${failed.metadata?.name} failed`),
    {
      type: "Restarting",
      status: "True",
      reason: "LearnerFailed",
      message: `learner pod ${failed.metadata?.name} failed (${failureReason(failed)}); recreated as ${next} (restart ${restarts} of ${backoffLimit})`,
    },
  ];
}

/**
 * What the current incarnation's state asks for: the next incarnation, a replacement for an outdated spec,
 * a first pod, or a verdict (Succeeded, or Failed once the backoff limit is spent). status.restarts follows.
 */
export function learner(job: JobObject, { restarts, current, previous }: Incarnation, conditions: readonly StepPOJobCondition[], defaults: Defaults): Step {
  const name = current?.metadata?.name;
  const backoffLimit = job.spec.runPolicy.backoffLimit ?? 3;

  if (current && podPhase(current) === "Failed" && !terminating(current)) {
    const why = failureReason(current);
    if (restarts + 1 > backoffLimit) {
      return {
        status: { restarts },
        conditions: [
          ...turnOff(conditions, ["Running", "Restarting"], "BackoffLimitExceeded", "learner failed"),
          {
            type: "Failed",
            status: "True",
            reason: "BackoffLimitExceeded",
            message: `learner pod ${name} failed (${why}) and backoffLimit ${backoffLimit} is exhausted`,
          },
        ],
      };
    }
    const next = desiredLearnerPod(job, restarts + 1, defaults);
    return {
      create: [next],
      status: { restarts: restarts + 1 },
      conditions: restartingConditions(conditions, current, next.metadata?.name ?? "", restarts + 1, backoffLimit),
    };
  }
  if (current && terminating(current)) {
    // Being deleted (spec change, or by hand): whatever it exits with, the same incarnation comes back
    // once it is gone. Its phase is not a verdict on the job: a SIGTERMed learner checkpoints and exits 0.
    return { status: { restarts } };
  }
  if (current && active(current) && outdated(current, specHash(job, defaults))) {
    return {
      deletePods: [name!],
      status: { restarts },
      events: [{ type: "Normal", reason: "SpecChanged", message: `learner pod ${name} runs an outdated spec; replacing it (it resumes from the checkpoint)` }],
    };
  }
  if (current && podPhase(current) === "Succeeded") {
    return {
      status: { restarts },
      conditions: [
        ...turnOff(conditions, ["Running", "Restarting"], "LearnerSucceeded", "training finished"),
        { type: "Succeeded", status: "True", reason: "LearnerSucceeded", message: `learner pod ${name} completed training` },
      ],
    };
  }
  // First start, after a resume, or the pod was deleted by someone: same incarnation, same name.
  if (!current) return { create: [desiredLearnerPod(job, restarts, defaults)], status: { restarts } };
  if (podPhase(current) === "Running") {
    const message = `learner pod ${name} is running`;
    return {
      status: { restarts },
      conditions: [...turnOff(conditions, ["Restarting"], "LearnerRunning", message), { type: "Running", status: "True", reason: "LearnerRunning", message }],
    };
  }
  // Pending or Unknown after a failed incarnation: Restarting holds until the new one runs. Derived from the
  // failed pod kept as evidence, not only set by the pass that created the new one, so a status write that
  // pass lost (or one computed from a job the cache had not refreshed yet) cannot leave the job "Running".
  if (previous && podPhase(previous) === "Failed") {
    return {
      status: { restarts },
      conditions: restartingConditions(conditions, previous, name ?? "", restarts, backoffLimit),
    };
  }
  // Pending or Unknown: nothing to decide until the kubelet reports more.
  return { status: { restarts } };
}
