// The children every pod of a job shares: the job file (ConfigMap), the metrics Service and the checkpoint
// claim. They outlive suspension (a resumed learner needs its checkpoints), so they come before it.
import type { V1ConfigMap } from "@kubernetes/client-node";
import { desiredChildren, type JobObject } from "../desired.ts";
import type { Child, Observed } from "../plan.ts";
import type { Step } from "./draft.ts";

/** Create what is missing; rewrite the job file when it drifted from the spec (pods read it on start). */
export function sharedChildren(job: JobObject, observed: Observed): Step {
  const base = desiredChildren(job);
  const create: Child[] = [];
  const update: V1ConfigMap[] = [];
  if (!observed.configMap) create.push(base.configMap);
  else if (JSON.stringify(observed.configMap.data ?? {}) !== JSON.stringify(base.configMap.data)) update.push(base.configMap);
  if (!observed.service) create.push(base.service);
  if (base.pvc && !observed.pvc) create.push(base.pvc);
  return { create, update };
}

/** Created: everything the job needs has been asked for (not that it runs: that is Running). */
export function childrenCreated(job: JobObject): Step {
  const message = `learner, ${job.spec.rollout.replicas} rollout pod(s), service, config map and checkpoint claim requested`;
  return { conditions: [{ type: "Created", status: "True", reason: "ChildrenCreated", message }] };
}
