// `steppo worker`: one rollout worker as its own process. It checks that its vocabulary matches the
// learner's, loads the current policy weights from the job's object store, and repeatedly: picks up a new
// policy version if there is one, takes admission tickets (staleness bound, admission.ts), runs a batch of
// episodes and publishes each finished trajectory (token ids + behaviour log-probs) to the job's stream.
// SIGTERM (the signal) stops between steps: finished episodes are published, unfinished ones abandoned and
// their tickets returned; a SIGKILLed worker's tickets are reclaimed by the learner. It exits when the
// learner reports the job done. A worker started mid-run (scale-up) loads the version `policy.version`
// names from the object store before its first episode and tags every trajectory with it.
import { createHash, randomBytes } from "node:crypto";
import type { NatsConnection } from "@nats-io/transport-node";
import { context, trace } from "@opentelemetry/api";
import type { TrajectoryBus } from "../core/bus.ts";
import { AdmissionKV, admissionCapacity, WorkerAdmission } from "./nats/admission.ts";
import { NatsTrajectoryBus } from "./nats/bus.ts";
import { connectNats, retrying, sleep } from "./nats/connection.ts";
import { KV_KEYS, sanitizeName } from "../core/nats-names.ts";
import { type LearnerProgress, RUNTIME_KEYS, type RuntimeInfo } from "./nats/runtime-state.ts";
import { JobStateKV, NatsWeightStore } from "./nats/weights.ts";
import { startTelemetry } from "../core/telemetry.ts";
import type { Trajectory } from "../core/trajectory.ts";
import { vocabularyHash } from "../core/weights-codec.ts";
import type { WorkerConfig } from "../core/process-config.ts";
import { selectBackend } from "../policy/backend.ts";
import { PolicyModel } from "../policy/model.ts";
import { asTokenPolicy } from "../policy/decoding.ts";
import { Tokenizer } from "../policy/tokenizer.ts";
import { openEnvironment } from "../envs/registry.ts";
import { loadPolicyWeights } from "../policy/policy-weights.ts";
import { RolloutWorker } from "../workers/rollout-worker.ts";

export interface WorkerProcessOptions {
  config: WorkerConfig;
  log: (line: string) => void;
  /** Aborting it (SIGTERM) stops between steps; the worker then leaves cleanly. */
  signal?: AbortSignal;
}

export interface WorkerProcessResult {
  reason: "done" | "stopped";
  episodes: number;
  envSteps: number;
  published: number;
  abandoned: number;
  /** Episodes left out for environment faults (with their groups), and episodes above max_payload. */
  excludedForFaults: number;
  oversized: number;
}

export class VocabularyMismatchError extends Error {}

export async function runWorkerProcess(opts: WorkerProcessOptions): Promise<WorkerProcessResult> {
  const { config: cfg, log } = opts;
  const spec = cfg.job.spec;
  const jobName = cfg.job.metadata.name;
  const incarnation = randomBytes(4).toString("hex");
  const telemetry = await startTelemetry({
    service: "steppo-worker",
    instance: cfg.workerId,
    job: jobName,
    port: cfg.metricsPort,
    otlpEndpoint: cfg.otlpEndpoint,
    log,
  });
  let nc: NatsConnection | undefined;
  const result: WorkerProcessResult = {
    reason: "stopped",
    episodes: 0,
    envSteps: 0,
    published: 0,
    abandoned: 0,
    excludedForFaults: 0,
    oversized: 0,
  };
  try {
    await selectBackend(spec.learner.backend, log);
    const env = await openEnvironment(spec.environment, spec.seed);
    const tokenizer = new Tokenizer(env.vocabulary());
    const myHash = vocabularyHash(tokenizer.words);

    nc = await connectNats({ servers: cfg.natsUrl, credsFile: cfg.natsCredsFile, name: `worker-${cfg.workerId}`, log });
    const kv = await JobStateKV.open(nc, { job: cfg.natsJob });
    const weights = await NatsWeightStore.open(nc, { job: cfg.natsJob, log }, kv);
    const bus = await NatsTrajectoryBus.open(nc, { job: cfg.natsJob, workerId: cfg.workerId, log });
    // The admission KV is the job's own bucket: the worker id only has to be a valid key token there.
    const admission = new WorkerAdmission(new AdmissionKV(kv.kv), `${sanitizeName(cfg.workerId)}.${incarnation}`);

    // Stop on SIGTERM or when the learner reports the job done; wake waiters on a new policy version.
    const stop = new AbortController();
    let signalledAt: number | undefined;
    const onSignal = () => {
      signalledAt = Date.now();
      log(`stop requested: ${admission.running} episode(s) running; finishing the step under way, publishing finished episodes, abandoning the rest`);
      stop.abort();
    };
    opts.signal?.addEventListener("abort", onSignal, { once: true });
    if (opts.signal?.aborted) onSignal();
    let done = false;
    let wake: () => void = () => {};
    const stopWatching = await kv.watch<LearnerProgress>(KV_KEYS.learnerProgress, (p) => {
      if (p?.phase === "done" && !done) {
        done = true;
        log(`learner reports job ${jobName} done; leaving`);
        stop.abort();
      }
    });
    const stopVersionWatch = await weights.watchLatest(() => wake());
    stop.signal.addEventListener("abort", () => wake(), { once: true });
    const waitForChange = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });

    // ---- the learner's runtime description: vocabulary check and model shape
    let info: RuntimeInfo | undefined;
    let model: PolicyModel | undefined;
    const checkRuntime = async (): Promise<RuntimeInfo | undefined> => {
      const got = await kv.get<RuntimeInfo>(RUNTIME_KEYS.runtime);
      if (!got) return undefined;
      if (got.tokenizerHash !== myHash || got.vocabSize !== tokenizer.size) {
        throw new VocabularyMismatchError(
          `worker ${cfg.workerId}: vocabulary mismatch with the learner (worker: hash ${myHash}, ${tokenizer.size} tokens; ` +
            `learner: hash ${got.tokenizerHash}, ${got.vocabSize} tokens). Learner and workers must run the same job spec ` +
            `(spec.seed and spec.environment decide the vocabulary): check that both use the same job file (${cfg.jobFile})`,
        );
      }
      if (!info || info.learnerIncarnation !== got.learnerIncarnation) {
        if (info) log(`learner restarted (incarnation ${got.learnerIncarnation})`);
        if (!model || JSON.stringify(model.config) !== JSON.stringify(got.model)) {
          model?.dispose();
          model = new PolicyModel(got.model, spec.seed);
        }
        info = got;
      }
      return got;
    };

    // ---- weights: reload whenever the policy.version key was rewritten (a new version, or a learner restored to an older one)
    // A malformed blob is refused: the worker keeps sampling with the version it has (tagging trajectories
    // with that version), and does not fetch the refused revision again.
    let loadedVersion = -1;
    let loadedRevision = 0;
    let refusedRevision = 0;
    const syncWeights = async (): Promise<boolean> => {
      const e = await retrying(() => kv.kv.get(KV_KEYS.policyVersion));
      if (e?.operation !== "PUT") return false;
      if (e.revision === loadedRevision && model) return true;
      if (e.revision === refusedRevision && model) return loadedVersion >= 0;
      if (!(await checkRuntime()) || !model) return false;
      const version = e.json<number>();
      const t0 = Date.now();
      const blob = await weights.get(version);
      if (!blob) return loadedVersion >= 0; // pruned already: a newer version is on its way
      const refused = loadPolicyWeights(model, blob);
      if (refused !== undefined) {
        if (refusedRevision !== e.revision) {
          const keeping = loadedVersion >= 0 ? `keeping policy v${loadedVersion}` : "no policy loaded yet; waiting for the next version";
          log(`policy v${version} from the object store refused (${refused}); ${keeping}`);
        }
        refusedRevision = e.revision;
        return loadedVersion >= 0;
      }
      log(`policy v${version} loaded from the object store (${blob.byteLength} bytes, ${Date.now() - t0} ms)`);
      loadedVersion = version;
      loadedRevision = e.revision;
      return true;
    };

    const seed = Number.parseInt(createHash("sha256").update(`${spec.seed}/${cfg.workerId}/${incarnation}`).digest("hex").slice(0, 8), 16);
    const contextLength = () => info?.model.contextLength ?? 0;
    let worker: RolloutWorker | undefined;
    const G = spec.rollout.groupSize;
    const B = spec.rollout.episodesPerUpdate;
    const groupsPerBatch = Math.max(1, Math.ceil(B / G / Math.max(1, spec.rollout.replicas)));

    // ---- metrics
    const meter = telemetry.meter;
    const episodes = meter.createCounter("steppo_worker_episodes", { description: "Episodes published" });
    const envSteps = meter.createCounter("steppo_worker_env_steps", { description: "Environment steps of published episodes" });
    const abandonedCtr = meter.createCounter("steppo_worker_episodes_abandoned", { description: "Episodes cut off (shutdown) and not published" });
    const excludedCtr = meter.createCounter("steppo_worker_episodes_excluded", {
      description: "Episodes not published: reason env_fault (an environment fault, with its group) or oversized (above max_payload)",
    });
    const admissionWaits = meter.createCounter("steppo_worker_admission_waits", { description: "Times the staleness bound made the worker wait" });
    let stepsPerSecond = 0;
    let successRate = 0;
    meter
      .createObservableGauge("steppo_worker_env_steps_per_second", { description: "Env steps per second, last batch" })
      .addCallback((r) => r.observe(stepsPerSecond));
    meter.createObservableGauge("steppo_worker_success_rate", { description: "Success rate of the last batch" }).addCallback((r) => r.observe(successRate));
    meter
      .createObservableGauge("steppo_worker_policy_version", { description: "Policy version the worker samples with" })
      .addCallback((r) => r.observe(loadedVersion));
    meter.createObservableGauge("steppo_worker_running_episodes").addCallback((r) => r.observe(admission.running));

    const beat = setInterval(
      () => {
        admission.heartbeat().catch((err) => log(`admission heartbeat failed: ${(err as Error).message}`));
      },
      Math.max(200, Math.floor(cfg.admissionLeaseMs / 4)),
    );
    beat.unref();

    try {
      while (!stop.signal.aborted) {
        if (!(await syncWeights())) {
          telemetry.setReady(false, "waiting for the learner's first policy version");
          await waitForChange(500);
          continue;
        }
        telemetry.setReady(true);
        if (!worker) {
          worker = new RolloutWorker(cfg.workerId, env, tokenizer, spec, contextLength(), seed, incarnation);
          worker.log = log;
        }
        const before = { faults: worker.stats.excludedForFaults, oversized: worker.stats.oversized };
        const capacity = admissionCapacity(loadedVersion, spec.training.maxPolicyLag, B);
        const granted = await admission.acquire(groupsPerBatch * G, G, capacity);
        if (granted === 0) {
          admissionWaits.add(1);
          await waitForChange(1000);
          continue;
        }
        // Count publishes: a trajectory is "published" once the stream stored it.
        let published = 0;
        const counting: TrajectoryBus = {
          publish: async (t: Trajectory) => {
            await bus.publish(t);
            published++;
          },
          fetch: () => Promise.resolve([]),
          close: () => Promise.resolve(),
        };
        const t0 = Date.now();
        const batchSpan = telemetry.tracer.startSpan("episodes", {
          attributes: { "steppo.worker": cfg.workerId, "steppo.policy_version": loadedVersion, "steppo.episodes": granted },
        });
        let trajs: Trajectory[] = [];
        try {
          trajs = await worker.produce(granted / G, asTokenPolicy(model as unknown as PolicyModel), loadedVersion, counting, stop.signal);
        } finally {
          const ctx = trace.setSpan(context.active(), batchSpan);
          for (const t of trajs.slice(0, published)) {
            telemetry.tracer
              .startSpan(
                "episode",
                { startTime: t0, attributes: { "steppo.traj_id": t.trajId, "steppo.steps": t.steps.length, "steppo.success": t.success } },
                ctx,
              )
              .end();
          }
          batchSpan.end();
          await admission.settle(published, granted - published, worker.stats.excludedForFaults + worker.stats.oversized - before.faults - before.oversized);
        }
        const excluded = { faults: worker.stats.excludedForFaults - before.faults, oversized: worker.stats.oversized - before.oversized };
        if (excluded.faults > 0) excludedCtr.add(excluded.faults, { reason: "env_fault" });
        if (excluded.oversized > 0) excludedCtr.add(excluded.oversized, { reason: "oversized" });
        result.excludedForFaults += excluded.faults;
        result.oversized += excluded.oversized;
        const steps = trajs.slice(0, published).reduce((n, t) => n + t.steps.length, 0);
        result.episodes += published;
        result.published += published;
        const abandoned = granted - published - excluded.faults - excluded.oversized;
        result.abandoned += abandoned;
        result.envSteps += steps;
        episodes.add(published);
        envSteps.add(steps);
        if (abandoned > 0) abandonedCtr.add(abandoned);
        stepsPerSecond = steps / Math.max(1e-3, (Date.now() - t0) / 1000);
        successRate = published ? trajs.slice(0, published).filter((t) => t.success).length / published : 0;
      }
    } finally {
      clearInterval(beat);
      stopWatching();
      stopVersionWatch();
      opts.signal?.removeEventListener("abort", onSignal);
      telemetry.setReady(false, "shutting down");
      await admission.leave().catch((err) => log(`leaving admission failed: ${(err as Error).message}`));
      await bus.close();
    }
    result.reason = done ? "done" : "stopped";
    const took = signalledAt === undefined ? "" : `; shut down ${Date.now() - signalledAt} ms after the stop request`;
    log(
      `worker ${cfg.workerId} ${result.reason}: published ${result.published} episodes (${result.envSteps} env steps), abandoned ${result.abandoned}, excluded for environment faults ${result.excludedForFaults}, oversized ${result.oversized}${took}`,
    );
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
