// Suspend and resume, as for a batch/v1 Job: suspended, every pod goes while the checkpoint claim, job file
// and Service stay, so resuming starts a new learner incarnation from the last checkpoint. The deadline
// clock (status.startTime) stops with the pods and starts again on resume.
import type { V1Pod } from "@kubernetes/client-node";
import type { StepPOJobCondition } from "../../crds/steppojob-status.ts";
import { isTrue, rfc3339 } from "../conditions.ts";
import { type ConditionChange, type Step, turnOff } from "./draft.ts";
import { terminating } from "./pods.ts";

/** spec.runPolicy.suspend is true: delete every pod not already going, and say so in the conditions. */
export function suspend(pods: V1Pod[], conditions: readonly StepPOJobCondition[]): Step {
  return {
    deletePods: pods.filter((p) => !terminating(p)).map((p) => p.metadata!.name!),
    conditions: [
      { type: "Suspended", status: "True", reason: "JobSuspended", message: "spec.runPolicy.suspend is true: pods deleted, checkpoints kept" },
      ...turnOff(conditions, ["Running", "Restarting"], "JobSuspended", "suspended"),
    ],
    unset: ["startTime"],
    status: { rollout: { ready: 0, desired: 0 } },
  };
}

/** Not suspended: clear a Suspended condition left from before, and start the clock unless it runs. */
export function resume(conditions: readonly StepPOJobCondition[], startTime: string | undefined, now: Date): Step {
  const changes: ConditionChange[] = isTrue(conditions, "Suspended")
    ? [{ type: "Suspended", status: "False", reason: "JobResumed", message: "spec.runPolicy.suspend is false: pods recreated" }]
    : [];
  return { conditions: changes, status: { startTime: startTime ?? rfc3339(now) } };
}
