// A finished job (Succeeded or Failed): nothing is started any more. spec.runPolicy.cleanPodPolicy decides
// which pods remain (kept ones hold logs and evidence), ttlSecondsAfterFinished when the job itself goes.
import type { V1Pod } from "@kubernetes/client-node";
import { rfc3339 } from "../conditions.ts";
import type { JobObject } from "../desired.ts";
import { secondsSince } from "./deadline.ts";
import type { Settlement } from "./draft.ts";
import { active, terminating } from "./pods.ts";

/** Pods to delete: None keeps all, All deletes all, the default (Running) deletes the unfinished ones. */
export function cleanupPods(pods: V1Pod[], policy: string | undefined): string[] {
  const live = pods.filter((p) => !terminating(p));
  if (policy === "None") return [];
  if (policy === "All") return live.map((p) => p.metadata!.name!);
  return live.filter(active).map((p) => p.metadata!.name!);
}

/**
 * completionTime is set once, on the first finished pass, so the TTL counts from the finish and not from
 * the last reconcile. Before the TTL is up, a timer to come back then; after it, delete the job (owner
 * references take the children). A finished job wants no rollout pods.
 */
export function settlement(runPolicy: JobObject["spec"]["runPolicy"], pods: V1Pod[], completionTime: string | undefined, now: Date): Settlement {
  const completed = completionTime ?? rfc3339(now);
  const s: Settlement = {
    deletePods: cleanupPods(pods, runPolicy.cleanPodPolicy),
    deleteJob: false,
    status: { completionTime: completed, rollout: { ready: 0, desired: 0 } },
  };
  const ttl = runPolicy.ttlSecondsAfterFinished;
  if (ttl !== undefined) {
    const left = ttl - (secondsSince(completed, now) ?? 0);
    if (left <= 0) s.deleteJob = true;
    else s.requeueAfterMs = Math.ceil(left * 1000);
  }
  return s;
}
