// The heart of the controller, as a PURE function: given a job, what the informer cache holds for it and
// the time, decide which objects to create/update/delete, the new status and the Events to record. The
// reconciler only executes the plan, so every policy (restarts, backoff, suspend, deadline, TTL,
// cleanPodPolicy, scaling) is unit-testable without an API server, and a re-run on the same input is a
// no-op apart from AlreadyExists answers (level-triggered: the plan depends on state, not on events).
//
// plan() is the sequence; each concern is a pure sub-step in plan/ returning a Step (draft.ts), in the
// manner of a controller-runtime reconciler handing off to named sub-reconcilers: refusals, shared children,
// suspend, learner (progress, restarts, backoff), rollouts (autoscaling, pods), pod health, deadline,
// and finish (cleanPodPolicy, TTL) once a step has decided the job's fate.
import type { V1ConfigMap, V1PersistentVolumeClaim, V1Pod, V1Service } from "@kubernetes/client-node";
import type { StepPOJobStatus } from "../crds/steppojob-status.ts";
import type { LearnerProgress } from "../runtime/nats/runtime-state.ts";
import { DEFAULTS, type Defaults, type JobObject } from "./desired.ts";
import { childrenCreated, sharedChildren } from "./plan/children.ts";
import { deadline } from "./plan/deadline.ts";
import { Draft } from "./plan/draft.ts";
import { settlement } from "./plan/finish.ts";
import { podsHealth } from "./plan/health.ts";
import { incarnation, learner } from "./plan/learner.ts";
import { byRole } from "./plan/pods.ts";
import { learnerProgress } from "./plan/progress.ts";
import { refusal } from "./plan/refusals.ts";
import { autoscaling, rollouts } from "./plan/rollouts.ts";
import { resume, suspend } from "./plan/suspend.ts";

export { failureReason } from "./plan/pods.ts";
export { replicasRefusal } from "./plan/refusals.ts";

export interface Observed {
  /** Pods controlled by this job (owner uid), terminating ones included. */
  pods: V1Pod[];
  configMap?: V1ConfigMap;
  service?: V1Service;
  pvc?: V1PersistentVolumeClaim;
  /** The learner's progress from the job's NATS KV bucket, when the operator reads it. */
  progress?: LearnerProgress;
}

export interface JobEvent {
  type: "Normal" | "Warning";
  reason: string;
  message: string;
}

export type Child = V1Pod | V1ConfigMap | V1Service | V1PersistentVolumeClaim;

export interface Plan {
  create: Child[];
  /** ConfigMaps whose data drifted from the spec (the job file pods read on start). */
  update: V1ConfigMap[];
  deletePods: string[];
  /** ttlSecondsAfterFinished elapsed: delete the StepPOJob itself (owner references take the children). */
  deleteJob: boolean;
  status: StepPOJobStatus;
  events: JobEvent[];
  /** Reconcile again after this long even if nothing changes (deadline, TTL): a timer, not a poll. */
  requeueAfterMs?: number;
  /** The autoscaler's new spec.rollout.replicas, written through the scale subresource (guarded by `from`). */
  scale?: { from: number; to: number };
}

export function plan(job: JobObject, observed: Observed, now: Date, defaults: Defaults = DEFAULTS): Plan {
  const d = new Draft(job, now);
  // Once a step has failed or succeeded the job, the rest of the pass would only start what must not run.
  const settle = () => d.settle(settlement(job.spec.runPolicy, observed.pods, d.status.completionTime, now));

  // Being deleted: the finalizer's business; the status stays current, nothing is created.
  if (job.metadata.deletionTimestamp) return d.done();
  if (d.finished) return settle();

  const refused = refusal(job, d.conditions, defaults);
  if (refused) {
    d.apply(refused);
    return settle();
  }
  d.apply(sharedChildren(job, observed));
  // Suspended, no pod runs: nothing for the learner, rollout or deadline steps to decide.
  if (job.spec.runPolicy.suspend) return d.apply(suspend(observed.pods, d.conditions)).done();
  d.apply(resume(d.conditions, d.status.startTime, now));

  const inc = incarnation(job.metadata.name, byRole(observed.pods, "learner"), job.status?.restarts ?? 0);
  d.apply(learnerProgress(inc.current, observed.progress, job.spec.training.updates));
  d.apply(learner(job, inc, d.conditions, defaults));
  if (d.finished) return settle();

  // The learner runs or is starting: its workers, their health, and the clock.
  d.apply(autoscaling(job, observed.progress, job.status?.autoscaler, now));
  d.apply(rollouts(job, byRole(observed.pods, "rollout"), defaults));
  d.apply(podsHealth(observed.pods, d.conditions));
  d.apply(childrenCreated(job));
  d.apply(deadline(job.spec.runPolicy, d.status.startTime, d.conditions, now));
  return d.finished ? settle() : d.done();
}
