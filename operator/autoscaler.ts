// The built-in rollout autoscaler (spec.rollout.autoscale), as a PURE decision function of the learner's
// demand signals (LearnerProgress.demand, from the job's NATS KV) and the autoscaler's own state in the
// job status. The operator applies a change through the scale subresource, so spec.rollout.replicas stays
// the single source of truth that `kubectl scale`, an HPA or KEDA would also write.
//
//   flooded  (backlog > backlogUpdates × episodesPerUpdate, or trajectories dropped as stale since the last
//            change): workers produce faster than the learner trains, within its policy-lag bound → down
//   starved  (the learner waited > starvationSeconds for samples in its last update) → up
//   otherwise hold. Never outside [minReplicas, maxReplicas], at most maxStep per decision, and no change
//   within stabilizationSeconds of the previous one (it takes a few updates for new workers to show).
import type { LearnerProgress } from "../runtime/nats/runtime-state.ts";
import type { RolloutSpec } from "../crds/steppojob.ts";
import type { StepPOJobStatus } from "../crds/steppojob-status.ts";
import { rfc3339 } from "./conditions.ts";

/** What the autoscaler writes into status.autoscaler. */
export type AutoscalerStatus = NonNullable<StepPOJobStatus["autoscaler"]>;
/** What it reads back: every part optional, a status is whatever the operator last wrote. */
export type PreviousAutoscalerStatus = Partial<AutoscalerStatus>;
export type ScaleDecision = NonNullable<NonNullable<StepPOJobStatus["autoscaler"]>["decision"]>;

export interface ScaleBounds {
  min: number;
  max: number;
}

/** minReplicas defaults to 1 (a job with no workers never trains); maxReplicas is required by the CRD. */
export function scaleBounds(rollout: RolloutSpec): ScaleBounds {
  const min = rollout.minReplicas ?? Math.min(1, rollout.replicas);
  return { min, max: rollout.maxReplicas ?? Math.max(rollout.replicas, min) };
}

function clamp(n: number, b: ScaleBounds): number {
  return Math.max(b.min, Math.min(b.max, n));
}

function signalsOf(p: LearnerProgress): AutoscalerStatus["signals"] {
  const d = p.demand;
  return {
    update: p.update,
    waitSecondsLastUpdate: d.waitSecondsLastUpdate,
    backlog: d.backlog,
    staleDrops: d.staleDrops,
    workers: d.workers,
  };
}

/**
 * One autoscaler step. Returns undefined when there is nothing new to decide on (the learner is not
 * training, or it has not finished an update since the last decision): deciding twice on the same signals
 * would scale twice for one observation.
 */
export function autoscale(
  rollout: RolloutSpec,
  progress: LearnerProgress,
  prev: PreviousAutoscalerStatus | undefined,
  now: Date,
): AutoscalerStatus | undefined {
  if (progress.phase !== "training" || !progress.demand) return undefined;
  if (prev?.signals && prev.signals.update === progress.update) return undefined;
  const a = rollout.autoscale;
  const bounds = scaleBounds(rollout);
  const from = rollout.replicas;
  const s = signalsOf(progress);
  const staleBase = prev?.staleDropsAtLastScale ?? s.staleDrops;
  const staleSince = s.staleDrops - staleBase;
  const backlogLimit = a.backlogUpdates * rollout.episodesPerUpdate;

  const decide = (action: ScaleDecision["action"], to: number, reason: string): AutoscalerStatus => {
    const changed = to !== from;
    return {
      lastScaleTime: changed ? rfc3339(now) : prev?.lastScaleTime,
      decision: { time: rfc3339(now), from, to, action: changed ? action : "hold", reason },
      signals: s,
      staleDropsAtLastScale: changed ? s.staleDrops : staleBase,
    };
  };

  // Someone (a user, an old spec) put replicas outside the bounds: come back at once, no window.
  if (from !== clamp(from, bounds)) {
    const to = clamp(from, bounds);
    return decide(to > from ? "up" : "down", to, `replicas ${from} outside [${bounds.min}, ${bounds.max}]`);
  }
  const since = prev?.lastScaleTime ? (now.getTime() - Date.parse(prev.lastScaleTime)) / 1000 : Number.POSITIVE_INFINITY;
  if (since < a.stabilizationSeconds) {
    return decide("hold", from, `stabilizing: last change ${since.toFixed(0)} s ago < stabilizationSeconds ${a.stabilizationSeconds}`);
  }

  if (s.backlog > backlogLimit || staleSince > 0) {
    const why =
      s.backlog > backlogLimit
        ? `backlog ${s.backlog} > ${a.backlogUpdates} × ${rollout.episodesPerUpdate} episodes per update`
        : `${staleSince} trajectories dropped as stale since the last change`;
    const to = Math.max(bounds.min, from - a.maxStep);
    return decide("down", to, to === from ? `flooded (${why}) but at minReplicas ${bounds.min}` : `flooded: ${why}`);
  }
  if (s.waitSecondsLastUpdate > a.starvationSeconds) {
    const why = `learner waited ${s.waitSecondsLastUpdate.toFixed(2)} s for samples > starvationSeconds ${a.starvationSeconds}`;
    const to = Math.min(bounds.max, from + a.maxStep);
    return decide("up", to, to === from ? `starved (${why}) but at maxReplicas ${bounds.max}` : `starved: ${why}`);
  }
  return decide(
    "hold",
    from,
    `balanced: waited ${s.waitSecondsLastUpdate.toFixed(2)} s ≤ ${a.starvationSeconds} s, backlog ${s.backlog} ≤ ${backlogLimit}, no new stale drops`,
  );
}
