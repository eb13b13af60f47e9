// Specs this operator refuses before it creates anything. Each one would otherwise go wrong later and
// worse: a credential copied into a ConfigMap spreads, a bad name or environment config crash-loops every
// pod, a job above the replica limit is half created. The job fails with a reason naming the problem.
import type { StepPOJobCondition } from "../../crds/steppojob-status.ts";
import { jobNameProblem } from "../../crds/names.ts";
import { specSecretProblems } from "../../crds/secrets.ts";
import { environmentConfigProblem } from "../../envs/config-check.ts";
import { DEFAULT_MAX_REPLICAS, type Defaults, type JobObject } from "../desired.ts";
import { type ConditionChange, type Step, turnOff } from "./draft.ts";

/**
 * Why this operator refuses the job's size, or undefined: replicas, or maxReplicas (the autoscaler's
 * ceiling), above the operator's limit. Checked before anything is created, so a refused job has no children.
 */
export function replicasRefusal(rollout: JobObject["spec"]["rollout"], limit: number): string | undefined {
  const over = [
    ["spec.rollout.replicas", rollout.replicas],
    ["spec.rollout.maxReplicas", rollout.maxReplicas],
  ].filter((e): e is [string, number] => typeof e[1] === "number" && e[1] > limit);
  if (over.length === 0) return undefined;
  return `${over.map(([f, v]) => `${f} ${v}`).join(" and ")} above this operator's limit of ${limit} rollout replicas (steppo operator --max-replicas)`;
}

/** The first refusal (Failed True, and Running False where it was True), or undefined for a spec it accepts. */
export function refusal(job: JobObject, conditions: readonly StepPOJobCondition[], defaults: Defaults): Step | undefined {
  const fail = (reason: string, message: string, running?: string): Step => {
    const changes: ConditionChange[] = [{ type: "Failed", status: "True", reason, message }];
    if (running !== undefined) changes.push(...turnOff(conditions, ["Running"], reason, running));
    return { conditions: changes };
  };

  // A credential in the clear in the spec (a job created before the CRD refused it, or through a field
  // the CRD cannot check): copying it into a ConfigMap or an env var would spread it, so write nothing
  // and fail the job. The messages name fields and headers, never values.
  const leaks = specSecretProblems(job.spec);
  if (leaks.length > 0) {
    return fail("CredentialsInSpec", leaks.map((e) => `${e.path}: ${e.message}`).join("; "), "the spec holds credentials in the clear");
  }

  // A name the CRD refuses today (a job stored before the rule): its pods could not load the job file.
  // It never ran, so Running is left as it is.
  const badName = jobNameProblem(job.metadata.name);
  if (badName) return fail("InvalidName", badName);

  // Too large for this operator: refused whole, never partly created (a scale-up past the limit fails the
  // job too, and cleanPodPolicy decides what happens to its pods).
  const tooLarge = replicasRefusal(job.spec.rollout, defaults.maxReplicas ?? DEFAULT_MAX_REPLICAS);
  if (tooLarge) return fail("ReplicasOverLimit", tooLarge, "too many rollout replicas");

  // An environment config that every pod would refuse at start (the CRD keeps environment.config free-form):
  // fail the job with the environment's own message instead of crash-looping its pods.
  const invalid = environmentConfigProblem(job.spec.environment);
  if (invalid) return fail("InvalidSpec", `${invalid.path}: ${invalid.message}`, "the spec is invalid");
  return undefined;
}
