// What became of one batch of admitted episodes, and the worker's running totals. Every admitted episode
// ends as exactly one of: published (the stream stored it), excluded (an environment fault hit it or its
// group, or it exceeded max_payload compressed) or abandoned (cut off by a stop). The admission counter
// settles the same split, so the learner's ticket count and the worker's totals agree.
import type { StepPOJob } from "../../crds/steppojob.ts";
import type { Trajectory } from "../../core/trajectory.ts";

export interface BatchTally {
  published: number;
  /** Environment steps of the published episodes. */
  steps: number;
  excludedForFaults: number;
  oversized: number;
  abandoned: number;
  stepsPerSecond: number;
  /** Share of the published episodes that succeeded (0 when none was published). */
  successRate: number;
}

/**
 * Tallies a batch of `granted` admitted episodes of which `published` reached the stream, `trajs` being
 * those returned (published first, in order), `excluded` the worker's exclusions during the batch.
 */
export function tallyBatch(
  granted: number,
  published: number,
  trajs: readonly Trajectory[],
  excluded: { faults: number; oversized: number },
  seconds: number,
): BatchTally {
  const stored = trajs.slice(0, published);
  const steps = stored.reduce((n, t) => n + t.steps.length, 0);
  return {
    published,
    steps,
    excludedForFaults: excluded.faults,
    oversized: excluded.oversized,
    abandoned: granted - published - excluded.faults - excluded.oversized,
    stepsPerSecond: steps / Math.max(1e-3, seconds),
    successRate: published ? stored.filter((t) => t.success).length / published : 0,
  };
}

/** The worker process's totals (its result). */
export interface WorkerTotals {
  episodes: number;
  envSteps: number;
  published: number;
  abandoned: number;
  /** Episodes left out for environment faults (with their groups), and episodes above max_payload. */
  excludedForFaults: number;
  oversized: number;
}

export function emptyTotals(): WorkerTotals {
  return { episodes: 0, envSteps: 0, published: 0, abandoned: 0, excludedForFaults: 0, oversized: 0 };
}

export function addBatch(totals: WorkerTotals, b: BatchTally): void {
  totals.excludedForFaults += b.excludedForFaults;
  totals.oversized += b.oversized;
  totals.episodes += b.published;
  totals.published += b.published;
  totals.abandoned += b.abandoned;
  totals.envSteps += b.steps;
}

/** The worker's last log line: its totals, and how long the shutdown took after a stop request. */
export function totalsLine(workerId: string, reason: "done" | "stopped", t: WorkerTotals, signalledAt: number | undefined, now = Date.now()): string {
  const took = signalledAt === undefined ? "" : `; shut down ${now - signalledAt} ms after the stop request`;
  return `worker ${workerId} ${reason}: published ${t.published} episodes (${t.envSteps} env steps), abandoned ${t.abandoned}, excluded for environment faults ${t.excludedForFaults}, oversized ${t.oversized}${took}`;
}

/** Episodes a worker asks admission for at once: its share of an update's groups, whole groups. */
export function episodesPerRequest(spec: StepPOJob["spec"]): number {
  const G = spec.rollout.groupSize;
  const groups = Math.max(1, Math.ceil(spec.rollout.episodesPerUpdate / G / Math.max(1, spec.rollout.replicas)));
  return groups * G;
}
