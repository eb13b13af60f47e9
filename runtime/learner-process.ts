// `steppo learner`: the learner as its own process, meeting the rollout workers only through NATS.
//   - consumes trajectories from the job's JetStream stream, checks each one at intake (trajectory-check.ts:
//     finite numbers, token ids in the vocabulary, steps within the context, consistent lengths) and
//     dead-letters the ones that fail (acked at once, counted, their admission tickets returned), drops (and
//     counts) samples more than maxPolicyLag versions old, trains on full batches (step samples shuffled
//     across all workers);
//   - publishes every new policy version to the object store and its number to KV;
//   - acks a trajectory only once its effect is durable: after the checkpoint that includes the update that
//     used it (or that records it as a stale drop). A learner SIGKILLed at any moment resumes from its last
//     checkpoint; what it had not checkpointed is redelivered and trained on again (or counted stale), and
//     what it had is suppressed by trajId (the checkpoint lists them);
//   - returns admission tickets for stale drops and reclaims those of dead workers (admission.ts);
//   - writes its progress and demand signals to KV (`learner.progress`) and serves /metrics.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Histogram } from "@opentelemetry/api";
import { AdmissionKV, AdmissionSupervisor, admissionCapacity } from "./nats/admission.ts";
import { type NatsBusCounters, type NatsDelivery, NatsTrajectoryBus } from "./nats/bus.ts";
import { connectNats, retrying } from "./nats/connection.ts";
import { jobNames, KV_KEYS } from "../core/nats-names.ts";
import { type LearnerProgress, RUNTIME_KEYS, type RuntimeInfo, type TrajectoryAccounting } from "./nats/runtime-state.ts";
import { JobStateKV, NatsWeightStore } from "./nats/weights.ts";
import { startTelemetry, type Telemetry, withSpan } from "../core/telemetry.ts";
import { encodeWeights, vocabularyHash } from "../core/weights-codec.ts";
import type { LearnerConfig } from "../core/process-config.ts";
import { restoreLearner, saveLearner } from "../learner/checkpoint.ts";
import { checkResumeSpec, setAsideCheckpoints } from "../learner/resume-spec.ts";
import { checkTrajectory, type IntakeLimits } from "../learner/trajectory-check.ts";
import { fetchCoalesced } from "./intake.ts";
import { type CurvePoint, writeCurveCsv, writeCurveSvg } from "../learner/report.ts";
import { recordUpdate } from "../learner/run-record.ts";
import { mountDashboard } from "./dashboard/server.ts";
import { serviceName } from "../crds/names.ts";
import { otherRuntimeMessage, runStateKind } from "../learner/run-state-kind.ts";
import { formatRates, initialPoint, type RunSummary, summarize, updatePoint, warmUp, warmUpCritic } from "../learner/run-phases.ts";
import { measuredAt, setUpRun } from "../learner/run-setup.ts";
import { redactUrl } from "../crds/secrets.ts";

export interface DistributedSummary extends RunSummary {
  trajectories: TrajectoryAccounting;
  distributed: {
    maxPolicyLag: number;
    /** Mean seconds per update spent waiting for samples. */
    waitSecondsPerUpdate: number;
    policyLag: { mean: number; max: number };
    /** Admission tickets reclaimed from workers presumed dead. */
    reclaimedWorkers: number;
  };
}

/** Run state beyond the learner's own, stored in every checkpoint. */
export interface DistRunState {
  envSteps: number;
  curve: CurvePoint[];
  initial: Record<string, number>;
  demonstrations?: number;
  checkpoints: string[];
  /** Durable totals (their acks follow the checkpoint). */
  accounting: { consumed: number; stale: number };
  /** TrajIds trained on or dropped, newest last (bounded): redeliveries of these are suppressed. */
  doneIds: string[];
  bus: Partial<NatsBusCounters>;
  waitSeconds: number;
  lag: { sum: number; n: number; max: number };
  reclaimedWorkers: number;
  /** Stream / dead-letter sequence numbers already retired when this run started (earlier runs of the job name). */
  seqBase: { traj: number; dlq: number };
}

/**
 * The run state of a learner that has not trained yet, with its initial greedy success rates (`initial.test`
 * is the in-domain split). Also what a checkpoint written before the first update (a shared warm start) holds.
 */
export function freshRunState(initial: Record<string, number>, demonstrations?: number): DistRunState {
  return {
    envSteps: 0,
    curve: initial.test === undefined ? [] : [initialPoint(initial.test)],
    initial,
    demonstrations,
    checkpoints: [],
    accounting: { consumed: 0, stale: 0 },
    doneIds: [],
    bus: {},
    waitSeconds: 0,
    lag: { sum: 0, n: 0, max: 0 },
    reclaimedWorkers: 0,
    seqBase: { traj: 0, dlq: 0 },
  };
}

export interface LearnerProcessOptions {
  config: LearnerConfig;
  /** Overrides spec.training.updates. */
  updates?: number;
  /** Start over: existing checkpoints are moved aside (setAsideCheckpoints) instead of resumed. */
  fresh?: boolean;
  log: (line: string) => void;
  onUpdate?: (p: CurvePoint, total: number) => void;
  /** Aborting it (SIGTERM) finishes the current update, checkpoints, acks and returns. */
  signal?: AbortSignal;
}

export interface LearnerProcessResult {
  /** Present when the job finished (budget or success criterion), absent when stopped by the signal. */
  summary?: DistributedSummary;
  stoppedAt: number;
}

const FETCH_WAIT_MS = 1000;

export async function runLearnerProcess(opts: LearnerProcessOptions): Promise<LearnerProcessResult> {
  const started = Date.now();
  const { config: cfg, log } = opts;
  const job = cfg.job;
  const spec = job.spec;
  const total = opts.updates ?? spec.training.updates;
  const B = spec.rollout.episodesPerUpdate;
  const maxLag = spec.training.maxPolicyLag;
  const names = jobNames(cfg.natsJob);

  const telemetry = await startTelemetry({
    service: "steppo-learner",
    instance: job.metadata.name,
    job: job.metadata.name,
    port: cfg.metricsPort,
    otlpEndpoint: cfg.otlpEndpoint,
    log,
    routes: (app) => mountDashboard(app, [cfg.runDir]),
  });
  if (telemetry.port !== undefined) {
    log(`dashboard: served at / on port ${telemetry.port} (in a cluster: kubectl port-forward svc/${serviceName(job.metadata.name)} ${telemetry.port})`);
  }
  let nc: NatsConnection | undefined;
  let progressKV: JobStateKV | undefined;
  try {
    const { backend, env, tokenizer, config: mcfg, learner, policy, evaluate } = await setUpRun(job, log);
    const a = learner.algorithm;
    log(
      `learner for job ${job.metadata.name}: ${env.name}, ${a.estimator} + ${a.ratio} ratio, ${learner.model.parameterCount()} parameters, ` +
        `batch ${B} episodes, maxPolicyLag ${maxLag}, NATS ${redactUrl(cfg.natsUrl)}`,
    );

    nc = await connectNats({ servers: cfg.natsUrl, credsFile: cfg.natsCredsFile, name: `learner-${names.job}`, log });
    const kv = await JobStateKV.open(nc, { job: cfg.natsJob });
    progressKV = kv;
    const weights = await NatsWeightStore.open(nc, { job: cfg.natsJob, log }, kv);
    const jsm = await retrying(() => jetstreamManager(nc as NatsConnection));

    // ---- state: from the last checkpoint, or fresh (warm-up, initial evaluation)
    mkdirSync(cfg.runDir, { recursive: true });
    let state: DistRunState;
    if (opts.fresh) {
      const aside = await setAsideCheckpoints(cfg.checkpointDir);
      if (aside) log(`--fresh: moved the existing checkpoints to ${aside}`);
    }
    const restored = await restoreLearner<DistRunState>(cfg.checkpointDir, learner, tokenizer, log);
    // The same rule as `steppo run`: a checkpoint trained under another spec is never resumed silently.
    if (restored) checkResumeSpec(restored.path, restored.meta, learner.spec);
    const putProgress = progressWriter(kv, log);
    const kind = restored ? runStateKind(restored.meta.run, learner.version) : undefined;
    if (restored && kind === "embedded") throw new Error(otherRuntimeMessage(restored.path, kind, learner.version));
    if (restored && kind === "warm-start") {
      // A warm start: the behaviour-cloned policy and its evaluation, no RL yet; this run starts from it.
      const warm = restored.meta.run as unknown as { initial?: Record<string, number>; demonstrations?: number };
      state = freshRunState(warm.initial ?? (await evaluate()), warm.demonstrations);
      log(`started from the warm start ${restored.path}`);
      await warmUpCritic(env, tokenizer, learner, policy, log);
    } else if (restored) {
      state = restored.meta.run;
      log(`resumed from ${restored.path} at update ${learner.version} (${state.accounting.consumed} trajectories consumed, ${state.accounting.stale} stale)`);
    } else {
      state = freshRunState({});
      if (spec.warmup.enabled) {
        await putProgress({ phase: "warmup", update: 0, updates: total });
        state.demonstrations = await warmUp(env, tokenizer, learner, log);
      }
      await learner.snapshotReference();
      state = freshRunState(await evaluate(), state.demonstrations);
      log(`initial success (train sampled, others greedy): ${formatRates(state.initial)}`);
      await warmUpCritic(env, tokenizer, learner, policy, log);
    }

    // ---- transport
    const doneCap = Math.max(20_000, 4 * (spec.checkpoint.interval + maxLag + 2) * B);
    const bus = await NatsTrajectoryBus.open(nc, {
      job: cfg.natsJob,
      consume: true,
      consumer: { ackWaitMs: cfg.ackWaitMs, maxAckPending: Math.max(10_000, 4 * (spec.checkpoint.interval + maxLag + 2) * B) },
      alreadyConsumed: state.doneIds,
      counters: state.bus,
      dedupeCapacity: Math.max(200_000, doneCap),
      log,
    });
    const admission = new AdmissionSupervisor(new AdmissionKV(kv.kv), cfg.admissionLeaseMs);
    if (!restored) {
      // A new run: what earlier runs of this job name left in the stream is this run's to consume (or drop).
      const ts = await retrying(() => jsm.streams.info(names.trajStream));
      state.seqBase = { traj: ts.state.last_seq - ts.state.messages, dlq: await bus.dlqLastSeq() };
      await admission.resetForNewRun(ts.state.messages);
    }

    // Workers check the vocabulary before exchanging token ids, and load the current weights.
    const info: RuntimeInfo = {
      tokenizerHash: vocabularyHash(tokenizer.words),
      vocabSize: tokenizer.size,
      model: mcfg,
      learnerIncarnation: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      startedAt: new Date().toISOString(),
    };
    await kv.put(RUNTIME_KEYS.runtime, info);
    const publishWeights = async () => {
      const v = learner.version;
      await weights.publish(v, encodeWeights(await learner.model.exportWeights()));
      // After a restore the store may hold a newer version from the lost run: point workers back at ours.
      if ((await weights.latestVersion()) !== v) await kv.put(KV_KEYS.policyVersion, v);
    };
    await publishWeights();

    // ---- metrics
    const m = learnerMetrics(telemetry);
    let acct: TrajectoryAccounting = { published: 0, consumed: 0, stale: 0, deadLettered: 0, rejected: 0, duplicates: 0, inFlight: 0 };
    let backlog = 0;
    let liveWorkers = 0;
    let lastWait = 0;
    // Throughput of the last update (env steps and episodes per second of wall time, all workers together).
    let lastRates = { envStepsPerSecond: 0, episodesPerSecond: 0 };
    let lastTrain: number | null = null;
    let lastTest: number | null = state.curve.findLast((p) => p.testSuccess !== null)?.testSuccess ?? null;
    m.observe(() => ({ acct, backlog, version: learner.version, liveWorkers, lastTrain, lastTest }));
    const accounting = async (): Promise<TrajectoryAccounting> => {
      const ts = await retrying(() => jsm.streams.info(names.trajStream), { maxWaitMs: 30_000 });
      const dlqLastSeq = await bus.dlqLastSeq(); // recreates a deleted DLQ stream; continues its numbering
      const ci = await bus.backlog().catch(() => undefined);
      backlog = ci?.pending ?? backlog;
      acct = {
        published: ts.state.last_seq - state.seqBase.traj,
        consumed: state.accounting.consumed,
        stale: state.accounting.stale,
        deadLettered: dlqLastSeq - state.seqBase.dlq,
        rejected: rejectedTotal(),
        excluded: await admission.excluded(),
        duplicates: bus.stats().duplicates,
        inFlight: ts.state.messages,
      };
      return acct;
    };

    // ---- the durable boundary: checkpoint, then ack what it covers
    let held: NatsDelivery[] = []; // trained on or dropped since the last checkpoint, unacked
    let heldConsumed = 0;
    let heldStale = 0;
    let lastCheckpoint: LearnerProgress["lastCheckpoint"] = null;
    const checkpoint = async () => {
      await withSpan(telemetry.tracer, "checkpoint", { "steppo.update": learner.version, "steppo.held": held.length }, async () => {
        state.accounting = { consumed: state.accounting.consumed + heldConsumed, stale: state.accounting.stale + heldStale };
        const { inFlight: _i, ...counters } = bus.stats();
        state.bus = counters;
        state.doneIds = state.doneIds.slice(-doneCap);
        const path = await saveLearner(cfg.checkpointDir, spec.checkpoint.keep, learner, tokenizer, state);
        state.checkpoints = [...state.checkpoints.filter((p) => p !== path), path].slice(-spec.checkpoint.keep);
        lastCheckpoint = { update: learner.version, path, at: new Date().toISOString() };
        const toAck = held;
        held = [];
        heldConsumed = 0;
        heldStale = 0;
        for (let i = 0; i < toAck.length; i += 256) await Promise.all(toAck.slice(i, i + 256).map((d) => d.ack()));
        m.checkpoints.add(1);
      });
    };

    // ---- training loop
    const updatesAtStart = learner.version;
    // Rejected at intake: dead-lettered and acked at once; their count travels in the checkpointed bus counters.
    const rejectedTotal = () => {
      const k = bus.stats().deadLetteredByKind;
      return k["non-finite"] + k["token-out-of-range"] + k["too-long"] + k.inconsistent + k["bad-policy-version"];
    };
    const intakeLimits = (): IntakeLimits => ({ vocabSize: tokenizer.size, contextLength: mcfg.contextLength, learnerVersion: learner.version });
    // A refused trajectory was admitted like any other: return its ticket (with the stale ones) or the
    // admission counter would leak one per poison message.
    const returnTickets = () => admission.returnStale(state.accounting.stale + heldStale + rejectedTotal());
    let stopped = false;
    let lastReclaim = 0;
    let staleTotal = state.accounting.stale;
    await accounting();
    telemetry.setReady(true);
    await putProgress(progress("training"));

    function progress(phase: LearnerProgress["phase"]): Omit<LearnerProgress, "updatedAt"> {
      const n = Math.max(1, learner.version - updatesAtStart);
      return {
        phase,
        update: learner.version,
        updates: total,
        envSteps: state.envSteps,
        trainSuccess: lastTrain,
        testSuccess: lastTest,
        lastCheckpoint,
        demand: { waitSecondsLastUpdate: lastWait, waitSecondsPerUpdate: state.waitSeconds / n, backlog, staleDrops: staleTotal, workers: liveWorkers },
        trajectories: acct,
        policyLag: { mean: state.lag.n ? state.lag.sum / state.lag.n : 0, max: state.lag.max },
        rates: lastRates,
      };
    }

    const superviseAdmission = async () => {
      if (Date.now() - lastReclaim < Math.min(2000, cfg.admissionLeaseMs / 3)) return;
      lastReclaim = Date.now();
      const r = await admission.reclaim();
      liveWorkers = r.live;
      for (const x of r.reclaimed) {
        state.reclaimedWorkers++;
        log(`admission: worker ${x.id} stopped heart-beating for ${cfg.admissionLeaseMs} ms; reclaimed its ${x.running} running episode ticket(s)`);
      }
    };

    let reached = false;
    while (learner.version < total) {
      const tUpdate = Date.now();
      const batch: NatsDelivery[] = [];
      let waitMs = 0;
      let starvedSince = Date.now();
      while (batch.length < B && !opts.signal?.aborted) {
        await superviseAdmission();
        const tw = Date.now();
        const ds = await fetchCoalesced(bus, B - batch.length, FETCH_WAIT_MS);
        waitMs += Date.now() - tw;
        if (ds.length > 0) starvedSince = Date.now();
        else if (Date.now() - starvedSince > cfg.admissionLeaseMs && (await bus.backlog()).pending === 0) {
          starvedSince = Date.now();
          const released = await admission.unblock(admissionCapacity(learner.version, maxLag, B), B - batch.length);
          if (released > 0) log(`admission: starved with no episode running; released ${released} leaked ticket(s)`);
        }
        let dropped = 0;
        for (const d of ds) {
          const problem = checkTrajectory(d.traj, intakeLimits());
          // Ahead of our version is no poison: a policy lost in a learner crash made it (dropped as stale below).
          if (problem && problem.cause !== "policy-version-ahead") {
            await d.deadLetter(problem.cause, problem.message);
            m.rejected.add(1, { cause: problem.cause });
            log(`intake: dead-lettered ${problem.message} (${problem.cause}) to ${names.dlqSubject}`);
            dropped++;
            continue;
          }
          const lag = learner.version - d.traj.policyVersion;
          state.doneIds.push(d.traj.trajId);
          if (lag > maxLag || lag < 0) {
            // Too old, or produced by a policy version lost in a learner crash (newer than ours).
            held.push(d);
            heldStale++;
            dropped++;
            m.stale.add(1);
            continue;
          }
          m.lag.record(lag);
          state.lag.sum += lag;
          state.lag.n++;
          state.lag.max = Math.max(state.lag.max, lag);
          batch.push(d);
        }
        if (dropped > 0) {
          staleTotal = state.accounting.stale + heldStale;
          await returnTickets();
        }
      }
      if (opts.signal?.aborted) {
        // Not trained on: give them back for the next learner (NAK on close) and forget them here.
        const unused = new Set(batch.map((d) => d.traj.trajId));
        state.doneIds = state.doneIds.filter((id) => !unused.has(id));
        for (const d of batch) await d.nak();
        stopped = true;
        break;
      }
      const trajs = batch.map((d) => d.traj);
      const tTrain = Date.now();
      const stats = await withSpan(telemetry.tracer, "update", { "steppo.update": learner.version + 1, "steppo.trajectories": trajs.length }, () =>
        learner.update(trajs),
      );
      const trainSeconds = (Date.now() - tTrain) / 1000;
      held.push(...batch);
      heldConsumed += batch.length;
      state.envSteps += stats.steps;
      state.waitSeconds += waitMs / 1000;
      lastWait = waitMs / 1000;
      await publishWeights();

      const point = updatePoint(learner.version, state.envSteps, trajs, stats, tUpdate, state.accounting.stale + heldStale);
      const last = learner.version === total;
      if (learner.version % spec.training.evalEvery === 0 || last) point.testSuccess = (await evaluate(["test"])).test;
      state.curve.push(point);
      recordUpdate({ runDir: cfg.runDir, learner, tokenizer, batch: trajs, curve: state.curve, log });
      lastTrain = point.trainSuccess;
      if (point.testSuccess !== null) lastTest = point.testSuccess;
      m.updates.add(1);
      m.envSteps.add(stats.steps);
      m.rates.envStepsPerSecond = stats.steps / Math.max(1e-3, point.seconds);
      lastRates = { envStepsPerSecond: m.rates.envStepsPerSecond, episodesPerSecond: trajs.length / Math.max(1e-3, point.seconds) };
      m.rates.samplesPerSecond = (stats.steps * a.epochs) / Math.max(1e-3, trainSeconds);
      m.rates.waitSeconds = lastWait;
      opts.onUpdate?.(point, total);

      const target = spec.training.successRate;
      reached = target !== undefined && point.testSuccess !== null && point.testSuccess >= target;
      if (learner.version % spec.checkpoint.interval === 0 || last || reached) await checkpoint();
      await accounting();
      await putProgress(progress("training"));
      if (reached) {
        log(`success criterion ${target} reached at update ${learner.version}`);
        break;
      }
    }

    if (heldConsumed > 0 || heldStale > 0) await checkpoint();
    await bus.close(); // NAKs anything still held (nothing trained on is)
    await accounting();
    if (stopped || !(reached || learner.version >= total)) {
      await putProgress(progress("training"));
      log(`stopped at update ${learner.version} (checkpointed; trajectories ${JSON.stringify(acct)})`);
      return { stoppedAt: learner.version };
    }

    const final = await evaluate(undefined, measuredAt(state.curve, learner.version));
    const summary: DistributedSummary = {
      ...summarize(job, learner, backend, state, final, started, restored?.path),
      trajectories: acct,
      distributed: {
        maxPolicyLag: maxLag,
        waitSecondsPerUpdate: state.waitSeconds / Math.max(1, learner.version),
        policyLag: { mean: state.lag.n ? state.lag.sum / state.lag.n : 0, max: state.lag.max },
        reclaimedWorkers: state.reclaimedWorkers,
      },
    };
    lastTest = final.test;
    writeCurveCsv(join(cfg.runDir, "curve.csv"), state.curve);
    writeCurveSvg(join(cfg.runDir, "curve.svg"), state.curve, `${job.metadata.name}: ${a.estimator} + ${a.ratio} ratio (distributed)`);
    writeFileSync(join(cfg.runDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
    await putProgress(progress("done"));
    log(`final success (train sampled, others greedy): ${formatRates(final)} (initial ${formatRates(state.initial)}); trajectories ${JSON.stringify(acct)}`);
    return { summary, stoppedAt: learner.version };
  } catch (err) {
    telemetry.setUnhealthy((err as Error).message);
    await progressKV?.put(KV_KEYS.learnerProgress, { phase: "failed", error: (err as Error).message, updatedAt: new Date().toISOString() }).catch(() => {});
    throw err;
  } finally {
    await nc?.drain().catch(() => {});
    await telemetry.close();
  }
}

function progressWriter(kv: JobStateKV, log: (line: string) => void) {
  let last: Partial<LearnerProgress> = {};
  return async (p: Partial<Omit<LearnerProgress, "updatedAt">>) => {
    last = { ...last, ...p, updatedAt: new Date().toISOString() };
    await kv.put(KV_KEYS.learnerProgress, last).catch((err) => log(`writing learner.progress failed: ${(err as Error).message}`));
  };
}

interface Observed {
  acct: TrajectoryAccounting;
  backlog: number;
  version: number;
  liveWorkers: number;
  lastTrain: number | null;
  lastTest: number | null;
}

function learnerMetrics(t: Telemetry) {
  const meter = t.meter;
  const rates = { envStepsPerSecond: 0, samplesPerSecond: 0, waitSeconds: 0 };
  const lag: Histogram = meter.createHistogram("steppo_learner_policy_lag", {
    description: "Versions between the policy that generated a trained sample and the learner's",
    advice: { explicitBucketBoundaries: [0, 1, 2, 3, 4, 6, 8, 16] },
  });
  const out = {
    rates,
    lag,
    updates: meter.createCounter("steppo_learner_updates", { description: "Learner updates since this process started" }),
    envSteps: meter.createCounter("steppo_learner_env_steps", { description: "Environment steps (step samples) trained on" }),
    stale: meter.createCounter("steppo_learner_stale_dropped", { description: "Samples dropped as more than maxPolicyLag versions old" }),
    rejected: meter.createCounter("steppo_learner_rejected", { description: "Trajectories refused at intake (by cause) and dead-lettered" }),
    checkpoints: meter.createCounter("steppo_learner_checkpoints", { description: "Checkpoints written" }),
    observe(read: () => Observed) {
      meter.createObservableGauge("steppo_learner_policy_version").addCallback((r) => r.observe(read().version));
      meter
        .createObservableGauge("steppo_learner_env_steps_per_second", { description: "Env steps per second of wall time, last update" })
        .addCallback((r) => r.observe(rates.envStepsPerSecond));
      meter
        .createObservableGauge("steppo_learner_samples_per_second", { description: "Step samples per second of training compute (all epochs), last update" })
        .addCallback((r) => r.observe(rates.samplesPerSecond));
      meter
        .createObservableGauge("steppo_learner_wait_seconds", { description: "Seconds spent waiting for samples, last update" })
        .addCallback((r) => r.observe(rates.waitSeconds));
      meter
        .createObservableGauge("steppo_learner_consumer_backlog", { description: "Trajectories in the stream not yet delivered to the learner" })
        .addCallback((r) => r.observe(read().backlog));
      meter
        .createObservableGauge("steppo_learner_live_workers", { description: "Rollout workers holding admission" })
        .addCallback((r) => r.observe(read().liveWorkers));
      meter
        .createObservableGauge("steppo_learner_success_rate", { description: "Success rate: train = last batch, test = last greedy evaluation" })
        .addCallback((r) => {
          const o = read();
          if (o.lastTrain !== null) r.observe(o.lastTrain, { split: "train" });
          if (o.lastTest !== null) r.observe(o.lastTest, { split: "test" });
        });
      meter
        .createObservableGauge("steppo_trajectories", { description: "Accounting: published = consumed + stale + dead_lettered + in_flight" })
        .addCallback((r) => {
          const a = read().acct;
          r.observe(a.published, { kind: "published" });
          r.observe(a.consumed, { kind: "consumed" });
          r.observe(a.stale, { kind: "stale" });
          r.observe(a.deadLettered, { kind: "dead_lettered" });
          r.observe(a.rejected ?? 0, { kind: "rejected" });
          r.observe(a.duplicates, { kind: "duplicates" });
          r.observe(a.inFlight, { kind: "in_flight" });
        });
    },
  };
  return out;
}
