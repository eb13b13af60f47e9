// `steppo worker`: one rollout worker as its own process. It checks that its vocabulary matches the
// learner's, loads the current policy weights from the job's object store, and repeatedly: picks up a new
// policy version if there is one, takes admission tickets (staleness bound, admission.ts), runs a batch of
// episodes and publishes each finished trajectory (token ids + behaviour log-probs) to the job's stream.
// SIGTERM (the signal) stops between steps: finished episodes are published, unfinished ones abandoned and
// their tickets returned; a SIGKILLed worker's tickets are reclaimed by the learner. It exits when the
// learner reports the job done. A worker started mid-run (scale-up) loads the version `policy.version`
// names from the object store before its first episode and tags every trajectory with it.
// The steps live in runtime/worker/: following the policy (policy-follower.ts), stopping and waking
// (worker-stop.ts), the episode loop (episode-loop.ts), its tallies (episode-tally.ts) and instruments.
import { createHash, randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { KV_KEYS, sanitizeName } from "../core/nats-names.ts";
import type { WorkerConfig } from "../core/process-config.ts";
import { startTelemetry } from "../core/telemetry.ts";
import { vocabularyHash } from "../core/weights-codec.ts";
import { openEnvironment } from "../envs/registry.ts";
import { selectBackend } from "../policy/backend.ts";
import { type ModelConfig, PolicyModel } from "../policy/model.ts";
import { loadPolicyWeights } from "../policy/policy-weights.ts";
import type { PolicyFactory } from "../policy/trainable-policy.ts";
import type { StepPOJobSpec } from "../crds/steppojob.ts";
import { jobModel } from "../learner/run-setup.ts";
import { RolloutWorker } from "../workers/rollout-worker.ts";
import { AdmissionKV, WorkerAdmission } from "./nats/admission.ts";
import { connectNats, type Log, retrying, sleep } from "./nats/connection.ts";
import { type LearnerProgress, RUNTIME_KEYS, type RuntimeInfo } from "./nats/runtime-state.ts";
import { NatsTrajectoryPublisher } from "./nats/trajectory-publisher.ts";
import { JobStateKV, NatsWeightStore } from "./nats/weights.ts";
import { runEpisodeLoop } from "./worker/episode-loop.ts";
import { emptyTotals, totalsLine, type WorkerTotals } from "./worker/episode-tally.ts";
import { type FollowedPolicy, PolicyFollower, type Vocabulary } from "./worker/policy-follower.ts";
import { workerMetrics } from "./worker/worker-metrics.ts";
import { WorkerStop } from "./worker/worker-stop.ts";

export { VocabularyMismatchError } from "./worker/policy-follower.ts";

export interface WorkerProcessOptions {
  config: WorkerConfig;
  log: (line: string) => void;
  /** Aborting it (SIGTERM) stops between steps; the worker then leaves cleanly. */
  signal?: AbortSignal;
}

export interface WorkerProcessResult extends WorkerTotals {
  reason: "done" | "stopped";
}

export async function runWorkerProcess(opts: WorkerProcessOptions): Promise<WorkerProcessResult> {
  const { config: cfg, log } = opts;
  // This process's identity among the worker's restarts: its admission record, trajIds and sampling seed.
  const incarnation = randomBytes(4).toString("hex");
  const telemetry = await startTelemetry({
    service: "steppo-worker",
    instance: cfg.workerId,
    job: cfg.job.metadata.name,
    port: cfg.metricsPort,
    otlpEndpoint: cfg.otlpEndpoint,
    log,
  });
  let nc: NatsConnection | undefined;
  const result: WorkerProcessResult = { reason: "stopped", ...emptyTotals() };
  try {
    const local = await openLocal(cfg, log);
    nc = await connectNats({ servers: cfg.natsUrl, credsFile: cfg.natsCredsFile, name: `worker-${cfg.workerId}`, log });
    const job = await openJob(nc, cfg, incarnation, log);
    const stop = new WorkerStop(opts.signal, () =>
      log(`stop requested: ${job.admission.running} episode(s) running; finishing the step under way, publishing finished episodes, abandoning the rest`),
    );
    const unwatch = await watchLearner(job, stop, cfg, log);
    const follower = followPolicy(job, local, cfg, log);
    const metrics = workerMetrics(telemetry.meter, { policyVersion: () => follower.loadedVersion, runningEpisodes: () => job.admission.running });
    const beat = startHeartbeat(job.admission, cfg.admissionLeaseMs, log);
    try {
      const newWorker = rolloutWorkerFactory(cfg, local, incarnation, log);
      await runEpisodeLoop({
        workerId: cfg.workerId,
        spec: cfg.job.spec,
        stop,
        follower,
        admission: job.admission,
        bus: job.bus,
        telemetry,
        metrics,
        totals: result,
        newWorker,
      });
    } finally {
      // Leave cleanly, also after a failure: the learner need not wait out the lease to reclaim our tickets.
      clearInterval(beat);
      unwatch();
      stop.dispose();
      telemetry.setReady(false, "shutting down");
      await job.admission.leave().catch((err) => log(`leaving admission failed: ${(err as Error).message}`));
      await job.bus.close();
    }
    result.reason = stop.done ? "done" : "stopped";
    log(totalsLine(cfg.workerId, result.reason, result, stop.signalledAt));
    return result;
  } catch (err) {
    telemetry.setUnhealthy((err as Error).message);
    throw err;
  } finally {
    await nc?.drain().catch(() => {});
    await telemetry.close();
    await sleep(0);
  }
}

/** What the worker has on its own: the compute backend, its environment and the vocabulary it decides. */
async function openLocal(cfg: WorkerConfig, log: Log) {
  const spec = cfg.job.spec;
  await selectBackend(spec.learner.backend, log);
  const env = await openEnvironment(spec.environment, spec.seed);
  const { tokenizer, config, factory } = await jobModel(cfg.job, env, log);
  const vocabulary: Vocabulary = { hash: vocabularyHash(tokenizer.identity()), size: tokenizer.size };
  return { env, tokenizer, vocabulary, newModel: followedModel(spec, config, factory) };
}

/**
 * How the follower makes the model the learner's runtime description names. The built-in model is built to
 * the learner's config; a Hugging Face model is the one this worker loaded from spec.model.source (the same
 * directory as the learner's), which must have the learner's dimensions; the weight store then brings the
 * learner's weights (with LoRA: its adapters and value head alone).
 */
function followedModel(spec: StepPOJobSpec, own: ModelConfig, factory: PolicyFactory): (config: ModelConfig) => FollowedPolicy {
  if (spec.model.source === undefined) return (config) => new PolicyModel(config, spec.seed);
  return (config) => {
    if (JSON.stringify(config) !== JSON.stringify(own)) {
      throw new Error(
        `spec.model.source ${spec.model.source}: the learner's model is ${JSON.stringify(config)}, this worker's ${JSON.stringify(own)}: do they read the same directory?`,
      );
    }
    const policy = factory.create();
    return {
      config: own,
      decoder: (contexts) => policy.decoder(contexts),
      importWeights: (weights) => policy.importWeights(weights),
      dispose: () => policy.dispose(),
    };
  };
}

type Local = Awaited<ReturnType<typeof openLocal>>;
type Job = Awaited<ReturnType<typeof openJob>>;

/** The job's NATS resources as a worker uses them: state KV, weights, the trajectory stream, admission. */
async function openJob(nc: NatsConnection, cfg: WorkerConfig, incarnation: string, log: Log) {
  const kv = await JobStateKV.open(nc, { job: cfg.natsJob });
  const weights = await NatsWeightStore.open(nc, { job: cfg.natsJob, log }, kv);
  const bus = await NatsTrajectoryPublisher.open(nc, { job: cfg.natsJob, workerId: cfg.workerId, log });
  // The admission KV is the job's own bucket: the worker id only has to be a valid key token there.
  const admission = new WorkerAdmission(new AdmissionKV(kv.kv), `${sanitizeName(cfg.workerId)}.${incarnation}`);
  return { kv, weights, bus, admission };
}

/** Stops the worker when the learner reports the job done; wakes its waits on a new policy version. Returns the unwatch. */
async function watchLearner(job: Job, stop: WorkerStop, cfg: WorkerConfig, log: Log): Promise<() => void> {
  const stopProgressWatch = await job.kv.watch<LearnerProgress>(KV_KEYS.learnerProgress, (p) => {
    if (p?.phase === "done" && !stop.done) {
      log(`learner reports job ${cfg.job.metadata.name} done; leaving`);
      stop.jobDone();
    }
  });
  const stopVersionWatch = await job.weights.watchLatest(() => stop.wake());
  return () => {
    stopProgressWatch();
    stopVersionWatch();
  };
}

/** The policy follower over the job's KV bucket (runtime.info, policy.version) and object store. */
function followPolicy(job: Job, local: Local, cfg: WorkerConfig, log: Log): PolicyFollower<FollowedPolicy> {
  return new PolicyFollower<FollowedPolicy>({
    sources: {
      runtimeInfo: () => job.kv.get<RuntimeInfo>(RUNTIME_KEYS.runtime),
      versionEntry: () => retrying(() => job.kv.kv.get(KV_KEYS.policyVersion)),
      weights: (version) => job.weights.get(version),
      newModel: local.newModel,
      load: loadPolicyWeights,
    },
    vocabulary: local.vocabulary,
    workerId: cfg.workerId,
    jobFile: cfg.jobFile,
    log,
  });
}

/**
 * Makes the rollout worker once the learner's context length is known. Its seed differs per worker and per
 * incarnation, so a restarted worker does not replay the tasks and tokens of its previous life.
 */
function rolloutWorkerFactory(cfg: WorkerConfig, local: Local, incarnation: string, log: Log): (contextLength: number) => RolloutWorker {
  const spec = cfg.job.spec;
  const seed = Number.parseInt(createHash("sha256").update(`${spec.seed}/${cfg.workerId}/${incarnation}`).digest("hex").slice(0, 8), 16);
  return (contextLength) => {
    const w = new RolloutWorker(cfg.workerId, local.env, local.tokenizer, spec, contextLength, seed, incarnation);
    w.log = log;
    return w;
  };
}

/** Keeps the worker's admission record alive, so the learner does not reclaim its tickets as a dead worker's. */
function startHeartbeat(admission: WorkerAdmission, leaseMs: number, log: Log): NodeJS.Timeout {
  const beat = setInterval(
    () => {
      admission.heartbeat().catch((err) => log(`admission heartbeat failed: ${(err as Error).message}`));
    },
    Math.max(200, Math.floor(leaseMs / 4)),
  );
  beat.unref();
  return beat;
}
