// The distributed transport (`steppo learner`): the learner meets its rollout workers only through NATS.
//   - consumes trajectories from the job's JetStream stream, checks each one at intake (trajectory-check.ts)
//     and dead-letters the ones that fail (acked at once, counted, their admission tickets returned), drops
//     (and counts) samples more than maxPolicyLag versions old (staleness-gate.ts), and hands the run loop
//     full batches (step samples shuffled across all workers by the learner);
//   - publishes every new policy version to the object store and its number to KV;
//   - acks a trajectory only once its effect is durable (ack-ledger.ts): after the checkpoint that includes
//     the update that used it, or records it as a stale drop. A learner SIGKILLed at any moment resumes from
//     its last checkpoint; what it had not checkpointed is redelivered, and what it had is suppressed by trajId;
//   - returns admission tickets for stale drops and reclaims those of dead workers (nats/admission.ts);
//   - writes its progress and demand signals to KV (`learner.progress`) for the operator;
//   - at the end, copies the results (summary, curves, final checkpoint) to the job's results object store
//     (nats/results.ts), which outlives the job; an upload that fails is logged and does not fail the run.
import { type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { jobNames, KV_KEYS } from "../core/nats-names.ts";
import type { LearnerConfig } from "../core/process-config.ts";
import type { Telemetry } from "../core/telemetry.ts";
import { encodeWeights, vocabularyHash } from "../core/weights-codec.ts";
import { redactUrl } from "../crds/secrets.ts";
import { listCheckpoints } from "../learner/checkpoint-store.ts";
import type { UpdateStats } from "../learner/learner.ts";
import type { CurvePoint } from "../learner/report.ts";
import type { RunSummary } from "../learner/run-phases.ts";
import { checkTrajectory } from "../learner/trajectory-check.ts";
import { AckLedger } from "./ack-ledger.ts";
import { fetchCoalesced } from "./intake.ts";
import { learnerMetrics } from "./learner-metrics.ts";
import { AdmissionKV, AdmissionSupervisor, admissionCapacity } from "./nats/admission.ts";
import { connectNats, retrying } from "./nats/connection.ts";
import { type LearnerProgress, RUNTIME_KEYS, type RuntimeInfo, type TrajectoryAccounting } from "./nats/runtime-state.ts";
import { type ConsumerCounters, type NatsDelivery, NatsTrajectoryConsumer } from "./nats/trajectory-consumer.ts";
import { RESULT_FILES, resultsStream, uploadResults } from "./nats/results.ts";
import { JobStateKV, NatsWeightStore } from "./nats/weights.ts";
import type { Batch, RunContext, Transport } from "./run-loop.ts";
import { type LagStats, StalenessGate } from "./staleness-gate.ts";

/** The distributed transport's part of a checkpoint. */
export interface DistributedState {
  /** Durable totals (their acks follow the checkpoint). */
  accounting: { consumed: number; stale: number };
  /** TrajIds trained on or dropped, newest last (bounded): redeliveries of these are suppressed. */
  doneIds: string[];
  bus: Partial<ConsumerCounters>;
  waitSeconds: number;
  lag: LagStats;
  reclaimedWorkers: number;
  /** Stream / dead-letter sequence numbers already retired when this run started (earlier runs of the job name). */
  seqBase: { traj: number; dlq: number };
}

export interface DistributedSummaryFields {
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

export type DistributedSummary = RunSummary & DistributedSummaryFields;

const FETCH_WAIT_MS = 1000;

function newDistributedState(): DistributedState {
  return {
    accounting: { consumed: 0, stale: 0 },
    doneIds: [],
    bus: {},
    waitSeconds: 0,
    lag: { sum: 0, n: 0, max: 0 },
    reclaimedWorkers: 0,
    seqBase: { traj: 0, dlq: 0 },
  };
}

export class NatsTransport implements Transport {
  readonly name = "distributed" as const;
  private ctx!: RunContext;
  private dist!: DistributedState;
  private bus!: NatsTrajectoryConsumer;
  private ledger!: AckLedger<NatsDelivery>;
  private gate!: StalenessGate;
  private admission!: AdmissionSupervisor;
  private readonly metrics: ReturnType<typeof learnerMetrics>;
  private readonly names: ReturnType<typeof jobNames>;
  private readonly putProgress: (p: Partial<Omit<LearnerProgress, "updatedAt">>) => Promise<void>;
  private acct: TrajectoryAccounting = { published: 0, consumed: 0, stale: 0, deadLettered: 0, rejected: 0, duplicates: 0, inFlight: 0 };
  private backlog = 0;
  private liveWorkers = 0;
  private lastWait = 0;
  private lastRates = { envStepsPerSecond: 0, episodesPerSecond: 0 };
  private lastTrain: number | null = null;
  private lastTest: number | null = null;
  private lastCheckpoint: LearnerProgress["lastCheckpoint"] = null;
  private lastReclaim = 0;
  private updatesAtStart = 0;
  /** The batch handed to the loop and not yet trained on. */
  private current: NatsDelivery[] = [];

  private constructor(
    private readonly cfg: LearnerConfig,
    private readonly nc: NatsConnection,
    private readonly kv: JobStateKV,
    private readonly weights: NatsWeightStore,
    private readonly jsm: JetStreamManager,
    private readonly telemetry: Telemetry,
    private readonly signal: AbortSignal | undefined,
    private readonly log: (line: string) => void,
  ) {
    this.names = jobNames(cfg.natsJob);
    this.metrics = learnerMetrics(telemetry);
    this.putProgress = progressWriter(kv, log);
  }

  static async connect(cfg: LearnerConfig, telemetry: Telemetry, log: (line: string) => void, signal?: AbortSignal): Promise<NatsTransport> {
    const nc = await connectNats({ servers: cfg.natsUrl, credsFile: cfg.natsCredsFile, name: `learner-${jobNames(cfg.natsJob).job}`, log });
    try {
      const kv = await JobStateKV.open(nc, { job: cfg.natsJob });
      const weights = await NatsWeightStore.open(nc, { job: cfg.natsJob, log }, kv);
      const jsm = await retrying(() => jetstreamManager(nc));
      return new NatsTransport(cfg, nc, kv, weights, jsm, telemetry, signal, log);
    } catch (err) {
      await nc.drain().catch(() => {});
      throw err;
    }
  }

  async phase(phase: "warmup" | "training", update: number, total: number): Promise<void> {
    await this.putProgress(phase === "warmup" ? { phase, update, updates: total } : this.progress(phase));
  }

  async open(ctx: RunContext, saved: unknown): Promise<void> {
    this.ctx = ctx;
    const { job, learner, tokenizer, modelConfig, state, log } = ctx;
    const spec = job.spec;
    const B = spec.rollout.episodesPerUpdate;
    const maxLag = spec.training.maxPolicyLag;
    log(`transport: NATS ${redactUrl(this.cfg.natsUrl)}, batch ${B} episodes, maxPolicyLag ${maxLag}`);
    this.dist = (saved as DistributedState | undefined) ?? newDistributedState();
    // Deliveries held unacked until a checkpoint: at most a few checkpoint intervals' worth (plus the lag window).
    const heldBound = 4 * (spec.checkpoint.interval + maxLag + 2) * B;
    const doneCap = Math.max(20_000, heldBound);
    this.ledger = new AckLedger(this.dist.accounting, this.dist.doneIds, doneCap);
    this.gate = new StalenessGate(maxLag, this.dist.lag);
    this.bus = await NatsTrajectoryConsumer.open(this.nc, {
      job: this.cfg.natsJob,
      consumer: { ackWaitMs: this.cfg.ackWaitMs, maxAckPending: Math.max(10_000, heldBound) },
      alreadyConsumed: this.dist.doneIds,
      counters: this.dist.bus,
      dedupeCapacity: Math.max(200_000, doneCap),
      log,
    });
    this.admission = new AdmissionSupervisor(new AdmissionKV(this.kv.kv), this.cfg.admissionLeaseMs);
    if (saved === undefined) {
      // This run's first time on this stream: what earlier runs of the job name left in it is this run's to
      // consume (or drop); the sequence numbers before them are not this run's.
      const ts = await retrying(() => this.jsm.streams.info(this.names.trajStream));
      this.dist.seqBase = { traj: ts.state.last_seq - ts.state.messages, dlq: await this.bus.dlqLastSeq() };
      await this.admission.resetForNewRun(ts.state.messages);
    } else {
      log(`transport: ${this.dist.accounting.consumed} trajectories consumed, ${this.dist.accounting.stale} stale so far`);
    }
    // Workers check the vocabulary before exchanging token ids, and load the current weights.
    const info: RuntimeInfo = {
      tokenizerHash: vocabularyHash(tokenizer.identity()),
      vocabSize: tokenizer.size,
      model: modelConfig,
      learnerIncarnation: `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      startedAt: new Date().toISOString(),
    };
    await this.kv.put(RUNTIME_KEYS.runtime, info);
    await this.publishWeights();
    this.updatesAtStart = learner.version;
    this.lastTest = state.curve.findLast((p) => p.testSuccess !== null)?.testSuccess ?? null;
    this.metrics.observe(() => ({
      acct: this.acct,
      backlog: this.backlog,
      version: learner.version,
      liveWorkers: this.liveWorkers,
      lastTrain: this.lastTrain,
      lastTest: this.lastTest,
    }));
    await this.accounting();
    this.telemetry.setReady(true); // the pod's readiness probe: the first update can start
  }

  /** Fills a batch of B samples admitted by the intake checks and the staleness gate; null on a stop. */
  async next(): Promise<Batch | null> {
    const { learner, tokenizer, modelConfig } = this.ctx;
    const B = this.ctx.job.spec.rollout.episodesPerUpdate;
    const batch: NatsDelivery[] = [];
    let waitMs = 0;
    let starvedSince = Date.now();
    while (batch.length < B && !this.signal?.aborted) {
      await this.superviseAdmission();
      const tw = Date.now();
      const ds = await fetchCoalesced(this.bus, B - batch.length, FETCH_WAIT_MS);
      waitMs += Date.now() - tw;
      if (ds.length > 0) starvedSince = Date.now();
      else if (Date.now() - starvedSince > this.cfg.admissionLeaseMs && (await this.bus.backlog()).pending === 0) {
        starvedSince = Date.now();
        const released = await this.admission.unblock(admissionCapacity(learner.version, this.gate.maxLag, B), B - batch.length);
        if (released > 0) this.log(`admission: starved with no episode running; released ${released} leaked ticket(s)`);
      }
      let dropped = 0;
      for (const d of ds) {
        const problem = checkTrajectory(d.traj, { vocabSize: tokenizer.size, contextLength: modelConfig.contextLength, learnerVersion: learner.version });
        // Ahead of our version is no poison: a policy lost in a learner crash made it (dropped as stale below).
        if (problem && problem.cause !== "policy-version-ahead") {
          await d.deadLetter(problem.cause, problem.message);
          this.metrics.rejected.add(1, { cause: problem.cause });
          this.log(`intake: dead-lettered ${problem.message} (${problem.cause}) to ${this.names.dlqSubject}`);
          dropped++;
          continue;
        }
        this.ledger.taken(d);
        const lag = this.gate.admit(d.traj.policyVersion, learner.version);
        if (lag === null) {
          this.ledger.stale(d);
          this.metrics.stale.add(1);
          dropped++;
          continue;
        }
        this.metrics.lag.record(lag);
        batch.push(d);
      }
      // A refused or stale trajectory was admitted like any other: return its ticket, or the admission
      // counter would leak one per poison message.
      if (dropped > 0) await this.admission.returnStale(this.ledger.staleTotal + this.rejectedTotal());
    }
    if (this.signal?.aborted) {
      // Not trained on: give them back for the next learner (NAK on close) and forget them here.
      this.ledger.untake(batch);
      for (const d of batch) await d.nak();
      return null;
    }
    this.current = batch;
    this.dist.waitSeconds += waitMs / 1000;
    this.lastWait = waitMs / 1000;
    return { trajectories: batch.map((d) => d.traj), staleDrops: this.ledger.staleTotal };
  }

  async updated(batch: Batch, stats: UpdateStats, point: CurvePoint): Promise<void> {
    this.ledger.consumed(this.current);
    this.current = [];
    await this.publishWeights();
    const m = this.metrics;
    m.updates.add(1);
    m.envSteps.add(stats.steps);
    m.rates.envStepsPerSecond = stats.steps / Math.max(1e-3, point.seconds);
    this.lastRates = { envStepsPerSecond: m.rates.envStepsPerSecond, episodesPerSecond: batch.trajectories.length / Math.max(1e-3, point.seconds) };
    m.rates.samplesPerSecond = stats.samplesPerSecond ?? 0;
    m.rates.waitSeconds = this.lastWait;
  }

  async settled(): Promise<void> {
    const point = this.ctx.state.curve.at(-1);
    this.lastTrain = point?.trainSuccess ?? this.lastTrain;
    if (point?.testSuccess != null) this.lastTest = point.testSuccess;
    await this.accounting();
    await this.putProgress(this.progress("training"));
  }

  save(): DistributedState {
    const { inFlight: _i, ...counters } = this.bus.stats();
    return { ...this.dist, ...this.ledger.snapshot(), bus: counters };
  }

  async saved(path: string): Promise<void> {
    await this.ledger.commit();
    this.dist.accounting = this.ledger.committed;
    this.lastCheckpoint = { update: this.ctx.learner.version, path, at: new Date().toISOString() };
    this.metrics.checkpoints.add(1);
  }

  unsaved(): boolean {
    return this.ledger.pending();
  }

  async close(): Promise<void> {
    await this.bus.close(); // NAKs anything still held (nothing trained on is)
    await this.accounting();
    await this.putProgress(this.progress("training"));
    this.log(`transport: trajectories ${JSON.stringify(this.acct)}`);
  }

  summary(): DistributedSummaryFields {
    return {
      trajectories: this.acct,
      distributed: {
        maxPolicyLag: this.gate.maxLag,
        waitSecondsPerUpdate: this.dist.waitSeconds / Math.max(1, this.ctx.learner.version),
        policyLag: { mean: this.gate.meanLag, max: this.gate.lag.max },
        reclaimedWorkers: this.dist.reclaimedWorkers,
      },
    };
  }

  async finished(summary: RunSummary): Promise<void> {
    this.lastTest = summary.test.final;
    await this.uploadResults();
    await this.putProgress(this.progress("done"));
  }

  /**
   * Copies summary.json, curve.csv, curve.svg and the newest checkpoint to the job's results store. The run
   * has already succeeded (its run directory and checkpoints hold everything): a failure here is logged, never
   * thrown. Objects are overwritten by name, so a resumed learner that finishes again uploads the same set.
   */
  private async uploadResults(): Promise<void> {
    const ttl = this.ctx.job.spec.results.ttlSeconds;
    const where = `results store ${resultsStream(this.cfg.natsJob)}`;
    try {
      const checkpointPath = this.lastCheckpoint?.path ?? (await listCheckpoints(this.cfg.checkpointDir)).at(-1)?.path;
      const written = await uploadResults(this.nc, { job: this.cfg.natsJob, ttlSeconds: ttl, runDir: this.cfg.runDir, checkpointPath });
      this.log(`results: uploaded ${written.join(", ")} to ${where} (${ttl === 0 ? "kept until deleted" : `expiring ${ttl} s after upload`})`);
    } catch (err) {
      this.log(
        `results: uploading ${[...RESULT_FILES, "the final checkpoint"].join(", ")} to ${where} failed (${(err as Error).message}); ` +
          `the run succeeded and its files stay in ${this.cfg.runDir}`,
      );
    }
  }

  /** A failed run says so in its progress record, for the operator's status. */
  async failed(err: Error): Promise<void> {
    await this.kv.put(KV_KEYS.learnerProgress, { phase: "failed", error: err.message, updatedAt: new Date().toISOString() }).catch(() => {});
  }

  async disconnect(): Promise<void> {
    await this.nc.drain().catch(() => {});
  }

  private async publishWeights(): Promise<void> {
    const v = this.ctx.learner.version;
    await this.weights.publish(v, encodeWeights(await this.ctx.learner.model.exportWeights()));
    // After a restore the store may hold a newer version from the lost run: point workers back at ours.
    if ((await this.weights.latestVersion()) !== v) await this.kv.put(KV_KEYS.policyVersion, v);
  }

  /** Rejected at intake: dead-lettered and acked at once; their count travels in the checkpointed bus counters. */
  private rejectedTotal(): number {
    const k = this.bus.stats().deadLetteredByKind;
    return k["non-finite"] + k["token-out-of-range"] + k["too-long"] + k.inconsistent + k["bad-policy-version"];
  }

  private async superviseAdmission(): Promise<void> {
    if (Date.now() - this.lastReclaim < Math.min(2000, this.cfg.admissionLeaseMs / 3)) return;
    this.lastReclaim = Date.now();
    const r = await this.admission.reclaim();
    this.liveWorkers = r.live;
    for (const x of r.reclaimed) {
      this.dist.reclaimedWorkers++;
      this.log(`admission: worker ${x.id} stopped heart-beating for ${this.cfg.admissionLeaseMs} ms; reclaimed its ${x.running} running episode ticket(s)`);
    }
  }

  /** published = consumed + stale + dead-lettered + in flight, read from the stream and this run's counters. */
  private async accounting(): Promise<TrajectoryAccounting> {
    const ts = await retrying(() => this.jsm.streams.info(this.names.trajStream), { maxWaitMs: 30_000 });
    const dlqLastSeq = await this.bus.dlqLastSeq(); // recreates a deleted DLQ stream; continues its numbering
    const ci = await this.bus.backlog().catch(() => undefined);
    this.backlog = ci?.pending ?? this.backlog;
    const committed = this.ledger.committed;
    this.acct = {
      published: ts.state.last_seq - this.dist.seqBase.traj,
      consumed: committed.consumed,
      stale: committed.stale,
      deadLettered: dlqLastSeq - this.dist.seqBase.dlq,
      rejected: this.rejectedTotal(),
      excluded: await this.admission.excluded(),
      duplicates: this.bus.stats().duplicates,
      inFlight: ts.state.messages,
    };
    return this.acct;
  }

  private progress(phase: LearnerProgress["phase"]): Omit<LearnerProgress, "updatedAt"> {
    const { learner, state, total } = this.ctx;
    const n = Math.max(1, learner.version - this.updatesAtStart);
    return {
      phase,
      update: learner.version,
      updates: total,
      envSteps: state.envSteps,
      trainSuccess: this.lastTrain,
      testSuccess: this.lastTest,
      lastCheckpoint: this.lastCheckpoint,
      demand: {
        waitSecondsLastUpdate: this.lastWait,
        waitSecondsPerUpdate: this.dist.waitSeconds / n,
        backlog: this.backlog,
        staleDrops: this.ledger.staleTotal,
        workers: this.liveWorkers,
      },
      trajectories: this.acct,
      policyLag: { mean: this.gate.meanLag, max: this.gate.lag.max },
      rates: this.lastRates,
    };
  }
}

function progressWriter(kv: JobStateKV, log: (line: string) => void) {
  let last: Partial<LearnerProgress> = {};
  return async (p: Partial<Omit<LearnerProgress, "updatedAt">>) => {
    last = { ...last, ...p, updatedAt: new Date().toISOString() };
    await kv.put(KV_KEYS.learnerProgress, last).catch((err) => log(`writing learner.progress failed: ${(err as Error).message}`));
  };
}
