// Rollout workers: how many (the autoscaler's decision on spec.rollout.replicas) and the pods at that
// number. Workers are stateless and interchangeable, so unlike the learner they are replaced without a
// backoff limit, under their own names (J-rollout-<index>), and all at once on a spec change.
import type { V1Pod } from "@kubernetes/client-node";
import type { StepPOJobStatus } from "../../crds/steppojob-status.ts";
import type { LearnerProgress } from "../../runtime/nats/runtime-state.ts";
import { podIndex } from "../../crds/names.ts";
import { autoscale } from "../autoscaler.ts";
import { type Defaults, desiredRolloutPod, type JobObject, specHash } from "../desired.ts";
import type { Child, JobEvent } from "../plan.ts";
import type { Step } from "./draft.ts";
import { active, failureReason, outdated, podPhase, ready, terminating } from "./pods.ts";

/**
 * The autoscaler decides on each new learner update. Its change goes to the spec through the scale
 * subresource, not to the pods: they follow on the reconcile the spec change triggers, so `kubectl scale`
 * and the autoscaler take one path.
 */
export function autoscaling(job: JobObject, kv: LearnerProgress | undefined, prev: StepPOJobStatus["autoscaler"], now: Date): Step {
  if (!job.spec.rollout.autoscale.enabled || !kv) return {};
  const next = autoscale(job.spec.rollout, kv, prev, now);
  if (!next) return {};
  const d = next.decision;
  if (!d || d.to === d.from) return { status: { autoscaler: next } };
  return {
    status: { autoscaler: next },
    scale: { from: d.from, to: d.to },
    events: [{ type: "Normal", reason: d.action === "up" ? "ScaledUp" : "ScaledDown", message: `rollout replicas ${d.from} → ${d.to}: ${d.reason}` }],
  };
}

/**
 * Indices [0, spec.rollout.replicas) exist; failed ones are deleted and come back under the same name once
 * the deletion is observed; surplus indices (scale down) are deleted. status.rollout counts the ready ones.
 */
export function rollouts(job: JobObject, pods: V1Pod[], defaults: Defaults): Step {
  const name = job.metadata.name;
  const desired = job.spec.rollout.replicas;
  const hash = specHash(job, defaults);
  const create: Child[] = [];
  const deletePods: string[] = [];
  const events: JobEvent[] = [];
  const byIndex = new Map<number, V1Pod>();
  for (const p of pods) {
    const i = podIndex(name, "rollout", p.metadata?.name ?? "");
    if (i === undefined || i >= desired) {
      if (!terminating(p)) deletePods.push(p.metadata!.name!);
    } else byIndex.set(i, p);
  }
  let readyCount = 0;
  let replaced = 0;
  for (let i = 0; i < desired; i++) {
    const p = byIndex.get(i);
    if (!p) create.push(desiredRolloutPod(job, i, defaults));
    else if (terminating(p)) continue;
    else if (active(p) && outdated(p, hash)) {
      // Workers are stateless: replace them all at once; each comes back under its name with the new spec.
      deletePods.push(p.metadata!.name!);
      replaced++;
    } else if (podPhase(p) === "Failed") {
      // Only failed workers are replaced. A worker exits 0 when the learner has marked the job done (or it
      // was asked to stop): Succeeded is finished, not broken; a replacement would leave at once, or be
      // killed by cleanPodPolicy as soon as the learner's success is observed (workers see the mark first).
      deletePods.push(p.metadata!.name!);
      events.push({ type: "Warning", reason: "RolloutPodReplaced", message: `rollout pod ${p.metadata?.name} failed (${failureReason(p)}); replacing it` });
    } else if (ready(p)) readyCount++;
  }
  // One Event for a spec change, not one per worker: with many workers they would bury the rest.
  if (replaced > 0) events.push({ type: "Normal", reason: "SpecChanged", message: `${replaced} rollout pod(s) run an outdated spec; replacing them` });
  return { create, deletePods, events, status: { rollout: { ready: readyCount, desired } } };
}
