// Deleting a StepPOJob leaves nothing behind: the operator's finalizer holds the object until the job's
// pods are gone and its NATS resources (trajectory and dead-letter streams, KV bucket, weights object
// store) are deleted. All state is in the object (deletionTimestamp + finalizer), so an operator that
// restarts mid-deletion simply finishes it. PURE functions here; the reconciler executes them.
//
// Pods go first, and the operator deletes them itself: with the usual background propagation the garbage
// collector would only delete them after the job (and so after the finalizer), and a learner still running
// would recreate the streams the cleanup just deleted.
import type { V1Pod } from "@kubernetes/client-node";
import { getCondition, setCondition } from "./conditions.ts";
import type { JobObject } from "./desired.ts";
import type { JobEvent } from "./plan.ts";
import type { StepPOJobStatus } from "../crds/steppojob-status.ts";

export const FINALIZER = "steppo.dev/cleanup";
/** Escape hatch: `"true"` deletes the job without touching NATS (a NATS server gone for good). */
export const SKIP_NATS_CLEANUP_ANNOTATION = "steppo.dev/skip-nats-cleanup";

export function hasFinalizer(job: JobObject): boolean {
  return (job.metadata.finalizers ?? []).includes(FINALIZER);
}

export function skipNatsCleanup(job: JobObject): boolean {
  return job.metadata.annotations?.[SKIP_NATS_CLEANUP_ANNOTATION] === "true";
}

export interface FinalizePlan {
  /** Pods to delete now (not yet terminating). */
  deletePods: string[];
  /** Pods still present (terminating included): NATS cleanup waits until this is 0 (their delete events requeue the job). */
  podsLeft: number;
  /** Delete the job's NATS resources once no pod is left. */
  cleanNats: boolean;
}

export function planFinalize(job: JobObject, pods: V1Pod[]): FinalizePlan {
  const live = pods.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata!.name!);
  return { deletePods: live, podsLeft: pods.length, cleanNats: !skipNatsCleanup(job) };
}

/**
 * The status while the NATS cleanup fails (`problem`) or after it recovered (undefined): a CleanupBlocked
 * condition, and a Warning Event when it turns True. Unchanged input gives an identical status (no write).
 */
export function cleanupStatus(job: JobObject, problem: string | undefined, now: Date): { status: StepPOJobStatus; events: JobEvent[] } {
  const prev = job.status ?? {};
  const conds = prev.conditions ?? [];
  if (problem === undefined) {
    if (getCondition(conds, "CleanupBlocked")?.status !== "True") return { status: prev, events: [] };
    const r = setCondition(conds, "CleanupBlocked", "False", "NatsCleanedUp", "NATS resources deleted", now);
    return { status: { ...prev, conditions: r.conditions }, events: [] };
  }
  const message = `deleting the job's NATS streams and buckets failed: ${problem}; retrying with backoff (to delete the job without NATS cleanup, annotate it ${SKIP_NATS_CLEANUP_ANNOTATION}=true)`;
  const r = setCondition(conds, "CleanupBlocked", "True", "NatsUnavailable", message, now);
  const events: JobEvent[] = r.changed ? [{ type: "Warning", reason: "NatsCleanupFailed", message }] : [];
  return { status: { ...prev, conditions: r.conditions }, events };
}
