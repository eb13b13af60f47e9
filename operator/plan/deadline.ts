// spec.runPolicy.activeDeadlineSeconds, counted from status.startTime (the job's start, or its last
// resume): past it the job fails. Before it, a timer: the reconciler requeues the job for the moment it
// runs out, since no watch event would arrive then.
import type { StepPOJobCondition } from "../../crds/steppojob-status.ts";
import type { JobObject } from "../desired.ts";
import { type Step, turnOff } from "./draft.ts";

/** Seconds from an RFC 3339 time to now; undefined when there is no time. */
export function secondsSince(t: string | undefined, now: Date): number | undefined {
  return t === undefined ? undefined : (now.getTime() - Date.parse(t)) / 1000;
}

export function deadline(runPolicy: JobObject["spec"]["runPolicy"], startTime: string | undefined, conditions: readonly StepPOJobCondition[], now: Date): Step {
  const limit = runPolicy.activeDeadlineSeconds;
  if (limit === undefined) return {};
  const left = limit - (secondsSince(startTime, now) ?? 0);
  if (left > 0) return { requeueAfterMs: Math.ceil(left * 1000) };
  return {
    // Nothing new starts after the deadline, whatever the steps before decided.
    withdraw: true,
    conditions: [
      ...turnOff(conditions, ["Running", "Restarting"], "DeadlineExceeded", "deadline exceeded"),
      { type: "Failed", status: "True", reason: "DeadlineExceeded", message: `job ran longer than activeDeadlineSeconds (${limit} s)` },
    ],
  };
}
