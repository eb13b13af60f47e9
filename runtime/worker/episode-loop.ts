// The rollout worker's loop, until a stop: pick up a new policy version if there is one, take admission
// tickets for a batch of episodes (the staleness bound, nats/admission.ts), run the batch and publish each
// finished trajectory, then tell admission what became of every ticket. A worker without a policy yet, or
// without tickets, waits until a new version or a stop wakes it. A stop ends the batch between steps: its
// finished episodes are published, the rest abandoned and their tickets returned.
import { context, trace } from "@opentelemetry/api";
import type { TrajectoryPublisher } from "../../core/bus.ts";
import type { Telemetry } from "../../core/telemetry.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import type { StepPOJob } from "../../crds/steppojob.ts";
import { asTokenPolicy } from "../../policy/decoding.ts";
import type { RolloutWorker } from "../../workers/rollout-worker.ts";
import { admissionCapacity, type WorkerAdmission } from "../nats/admission.ts";
import { addBatch, type BatchTally, episodesPerRequest, tallyBatch, type WorkerTotals } from "./episode-tally.ts";
import type { FollowedPolicy, PolicyFollower } from "./policy-follower.ts";
import type { WorkerMetrics } from "./worker-metrics.ts";
import type { WorkerStop } from "./worker-stop.ts";

export interface EpisodeLoop {
  workerId: string;
  spec: StepPOJob["spec"];
  stop: WorkerStop;
  follower: PolicyFollower<FollowedPolicy>;
  admission: WorkerAdmission;
  bus: TrajectoryPublisher;
  telemetry: Telemetry;
  metrics: WorkerMetrics;
  /** Added to after every batch. */
  totals: WorkerTotals;
  /** The rollout worker, made once the learner's context length is known (with the first policy). */
  newWorker(contextLength: number): RolloutWorker;
}

export async function runEpisodeLoop(l: EpisodeLoop): Promise<void> {
  const { spec, stop, follower, telemetry } = l;
  const episodes = episodesPerRequest(spec);
  let worker: RolloutWorker | undefined;
  while (!stop.signal.aborted) {
    if (!(await follower.sync())) {
      telemetry.setReady(false, "waiting for the learner's first policy version");
      await stop.waitForChange(500);
      continue;
    }
    telemetry.setReady(true);
    worker ??= l.newWorker(follower.contextLength);
    const capacity = admissionCapacity(follower.loadedVersion, spec.training.maxPolicyLag, spec.rollout.episodesPerUpdate);
    const granted = await l.admission.acquire(episodes, spec.rollout.groupSize, capacity);
    if (granted === 0) {
      l.metrics.admissionWaited();
      await stop.waitForChange(1000);
      continue;
    }
    const tally = await runBatch(l, worker, granted);
    l.metrics.batch(tally);
    addBatch(l.totals, tally);
  }
}

/** Runs `granted` admitted episodes and publishes the finished ones; settles every ticket, also on a failure. */
async function runBatch(l: EpisodeLoop, worker: RolloutWorker, granted: number): Promise<BatchTally> {
  const before = { faults: worker.stats.excludedForFaults, oversized: worker.stats.oversized };
  const excluded = () => ({ faults: worker.stats.excludedForFaults - before.faults, oversized: worker.stats.oversized - before.oversized });
  // Count publishes: a trajectory is "published" once the stream stored it.
  let published = 0;
  const counting: TrajectoryPublisher = {
    publish: async (t: Trajectory) => {
      await l.bus.publish(t);
      published++;
    },
  };
  const version = l.follower.loadedVersion;
  const tracer = l.telemetry.tracer;
  const t0 = Date.now();
  const batchSpan = tracer.startSpan("episodes", {
    attributes: { "steppo.worker": l.workerId, "steppo.policy_version": version, "steppo.episodes": granted },
  });
  let trajs: Trajectory[] = [];
  try {
    const model = l.follower.model as FollowedPolicy;
    trajs = await worker.produce(granted / l.spec.rollout.groupSize, asTokenPolicy(model, model.config.vocabSize), version, counting, l.stop.signal);
  } finally {
    const ctx = trace.setSpan(context.active(), batchSpan);
    for (const t of trajs.slice(0, published)) {
      tracer
        .startSpan("episode", { startTime: t0, attributes: { "steppo.traj_id": t.trajId, "steppo.steps": t.steps.length, "steppo.success": t.success } }, ctx)
        .end();
    }
    batchSpan.end();
    const x = excluded();
    await l.admission.settle(published, granted - published, x.faults + x.oversized);
  }
  return tallyBatch(granted, published, trajs, excluded(), (Date.now() - t0) / 1000);
}
