// `steppo run` without a cluster: the learner and N rollout workers in one process, meeting over the
// in-memory bus (the same TrajectoryBus interface the NATS runtime implements). Synchronous and
// on-policy: each update's batch is produced with the current weights.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InMemoryBus } from "./in-memory-bus.ts";
import { Rng, type RngState } from "../core/rng.ts";
import type { StepPOJob } from "../crds/steppojob.ts";
import { RolloutWorker } from "../workers/rollout-worker.ts";
import { restoreLearner, saveLearner } from "../learner/checkpoint.ts";
import { type CurvePoint, writeCurveCsv, writeCurveSvg } from "../learner/report.ts";
import { recordUpdate } from "../learner/run-record.ts";
import { otherRuntimeMessage, runStateKind } from "../learner/run-state-kind.ts";
import { formatRates, initialPoint, type RunSummary, summarize, updatePoint, warmUp, warmUpCritic } from "../learner/run-phases.ts";
import { partitionTrajectories } from "../learner/trajectory-check.ts";
import { checkResumeSpec, setAsideCheckpoints } from "../learner/resume-spec.ts";
import { measuredAt, setUpRun } from "../learner/run-setup.ts";
import { loadWarmStart, type WarmStart } from "../learner/warm-start.ts";

export type { RunSummary };

export interface RunOptions {
  /** Overrides spec.training.updates. */
  updates?: number;
  /**
   * Stop after the update that brings the environment steps trained on to at least this many (the last
   * batch may overshoot it by less than one batch); `updates` still bounds the run. Lets runs whose
   * episodes differ in length be compared at one budget of environment steps.
   */
  envStepBudget?: number;
  /**
   * A warm start written by `writeWarmStart` (learner/warm-start.ts) for this job's model, environment
   * and warm-up: a fresh run starts from it instead of warming up itself. A run with checkpoints of its
   * own resumes from those.
   */
  warmStart?: string;
  /** Where checkpoints (unless spec.checkpoint.dir is set), the curve and the summary go. */
  runDir: string;
  /** Start over: existing checkpoints are moved aside (setAsideCheckpoints) instead of resumed. */
  fresh?: boolean;
  log: (line: string) => void;
  /** Called after every update (progress bar / plain lines). */
  onUpdate?: (p: CurvePoint, total: number) => void;
}

/** Run state beyond the learner's own, stored in every checkpoint so a resume continues exactly. */
interface RunState {
  envSteps: number;
  workers: { id: string; rng: RngState; counter: number }[];
  curve: CurvePoint[];
  initial: Record<string, number>;
  demonstrations?: number;
  checkpoints: string[];
  /** Trajectories refused at intake, by cause (absent in checkpoints written before intake checks). */
  rejected?: Record<string, number>;
  /** Episodes left out of training because of environment faults (with their groups), and oversized ones. */
  excluded?: { envFaults: number; oversized: number };
}

/** Extra production rounds per update to replace groups lost to environment faults before training on less. */
const MAX_TOP_UP_ROUNDS = 3;

/** Batches in a row with nothing left after intake checks before the run gives up: a bug, not a poison message. */
const MAX_EMPTY_BATCHES = 3;

export async function runJob(job: StepPOJob, opts: RunOptions): Promise<RunSummary> {
  const started = Date.now();
  const spec = job.spec;
  const log = opts.log;
  const total = opts.updates ?? spec.training.updates;
  const { backend, env, tokenizer, config, learner, policy, evaluate } = await setUpRun(job, log);
  const a = learner.algorithm;
  log(
    `job ${job.metadata.name}: ${env.name}, estimator ${a.estimator} (γ=${a.gamma}, λ=${a.lambda}), ratio ${a.ratio} (clip ${a.clip}), ` +
      `model ${learner.model.parameterCount()} parameters (d=${config.dModel}, layers=${config.layers}, heads=${config.heads}, ctx=${config.contextLength}), vocab ${tokenizer.size}`,
  );
  const workers = Array.from({ length: Math.max(1, spec.rollout.replicas) }, (_, i) => {
    const w = new RolloutWorker(`worker-${i}`, env, tokenizer, spec, config.contextLength, spec.seed * 1000 + i);
    w.log = log;
    return w;
  });

  const ckptDir = spec.checkpoint.dir ?? join(opts.runDir, "checkpoints");
  mkdirSync(opts.runDir, { recursive: true });
  let state: RunState;
  if (opts.fresh) {
    const aside = await setAsideCheckpoints(ckptDir);
    if (aside) log(`--fresh: moved the existing checkpoints to ${aside}`);
  }
  const restored = await restoreLearner<RunState>(ckptDir, learner, tokenizer, log);
  const kind = restored ? runStateKind(restored.meta.run, learner.version) : undefined;
  if (restored && kind === "distributed") throw new Error(otherRuntimeMessage(restored.path, kind, learner.version));
  if (restored && kind === "embedded") {
    checkResumeSpec(restored.path, restored.meta, learner.spec);
    state = restored.meta.run;
    for (const w of workers) {
      const saved = state.workers.find((s) => s.id === w.id);
      if (saved) w.restore(new Rng(saved.rng), saved.counter);
    }
    log(`resumed from ${restored.path} at update ${learner.version}`);
  } else {
    state = { envSteps: 0, workers: [], curve: [], initial: {}, checkpoints: [] };
    if (restored) {
      // A warm start in the run's own checkpoint directory (copied there, or left by the distributed learner's
      // start): its weights are loaded already; start from them as from --warm-start.
      const warm = restored.meta.run as unknown as Partial<WarmStart>;
      state.demonstrations = warm.demonstrations;
      state.initial = warm.initial ?? (await evaluate());
      log(`started from the warm start ${restored.path}`);
    } else if (opts.warmStart) {
      const warm = await loadWarmStart(opts.warmStart, learner, tokenizer, log);
      state.demonstrations = warm.demonstrations;
      state.initial = warm.initial;
      log(`started from the warm start in ${opts.warmStart}`);
    } else {
      if (spec.warmup.enabled) state.demonstrations = await warmUp(env, tokenizer, learner, log);
      state.initial = await evaluate();
    }
    await learner.snapshotReference();
    log(`initial success (train sampled, others greedy): ${formatRates(state.initial)}`);
    await warmUpCritic(env, tokenizer, learner, policy, log);
    state.curve.push(initialPoint(state.initial.test));
  }

  const bus = new InMemoryBus();
  const groupsPerUpdate = spec.rollout.episodesPerUpdate / spec.rollout.groupSize;
  const saveCheckpoint = async () => {
    state.workers = workers.map((w) => ({ id: w.id, rng: w.rng.state(), counter: w.counter }));
    const path = await saveLearner(ckptDir, spec.checkpoint.keep, learner, tokenizer, state);
    state.checkpoints = [...state.checkpoints.filter((p) => p !== path), path].slice(-spec.checkpoint.keep);
  };
  const budgetReached = () => opts.envStepBudget !== undefined && state.envSteps >= opts.envStepBudget;
  let emptyBatches = 0;
  while (learner.version < total && !budgetReached()) {
    const tUpdate = Date.now();
    // Split the batch's task groups over the workers; in-process they take turns on the CPU. Groups lost to
    // environment faults are produced again (a few rounds at most), so the batch keeps its size.
    let missing = groupsPerUpdate;
    for (let round = 0; missing > 0 && round <= MAX_TOP_UP_ROUNDS; round++) {
      const wanted = missing;
      for (let i = 0; i < workers.length; i++) {
        const groups = Math.floor(wanted / workers.length) + (i < wanted % workers.length ? 1 : 0);
        if (groups === 0) continue;
        const w = workers[i];
        const before = { faults: w.stats.excludedForFaults, oversized: w.stats.oversized };
        const published = await w.produce(groups, policy, learner.version, bus);
        missing -= new Set(published.map((t) => t.groupId)).size;
        const excluded = state.excluded ?? { envFaults: 0, oversized: 0 };
        excluded.envFaults += w.stats.excludedForFaults - before.faults;
        excluded.oversized += w.stats.oversized - before.oversized;
        if (excluded.envFaults + excluded.oversized > 0) state.excluded = excluded;
      }
    }
    const deliveries = await bus.fetch(spec.rollout.episodesPerUpdate, 0);
    // The same intake checks as the distributed learner: a poison trajectory is set aside, never trained on.
    const limits = { vocabSize: tokenizer.size, contextLength: config.contextLength, learnerVersion: learner.version };
    const { accepted: batch, rejected } = partitionTrajectories(
      deliveries.map((d) => d.traj),
      limits,
    );
    for (const r of rejected) {
      bus.deadLetter(r.traj, r.problem.cause, r.problem.message);
      state.rejected = { ...state.rejected, [r.problem.cause]: (state.rejected?.[r.problem.cause] ?? 0) + 1 };
      log(`intake: dead-lettered ${r.problem.message} (${r.problem.cause})`);
    }
    if (batch.length === 0) {
      for (const d of deliveries) await d.ack();
      if (++emptyBatches >= MAX_EMPTY_BATCHES) {
        throw new Error(
          `every trajectory of ${emptyBatches} batches in a row failed the intake checks (last: ${rejected[0]?.problem.message ?? "no trajectories"})`,
        );
      }
      continue;
    }
    emptyBatches = 0;
    const stats = learner.update(batch);
    for (const d of deliveries) await d.ack();
    state.envSteps += stats.steps;
    const point = updatePoint(learner.version, state.envSteps, batch, stats, tUpdate);
    const last = learner.version === total || budgetReached();
    if (learner.version % spec.training.evalEvery === 0 || last) point.testSuccess = (await evaluate(["test"])).test;
    state.curve.push(point);
    recordUpdate({ runDir: opts.runDir, learner, tokenizer, batch, curve: state.curve, log });
    opts.onUpdate?.(point, total);
    const target = spec.training.successRate;
    const reached = target !== undefined && point.testSuccess !== null && point.testSuccess >= target;
    if (learner.version % spec.checkpoint.interval === 0 || last || reached) await saveCheckpoint();
    if (reached) {
      log(`success criterion ${target} reached at update ${learner.version}`);
      break;
    }
  }
  const final = await evaluate(undefined, measuredAt(state.curve, learner.version));
  const summary: RunSummary = {
    ...summarize(job, learner, backend, state, final, started, restored?.path),
    ...(state.rejected ? { rejected: state.rejected } : {}),
    ...(state.excluded ? { excluded: state.excluded } : {}),
  };
  writeCurveCsv(join(opts.runDir, "curve.csv"), state.curve);
  writeCurveSvg(join(opts.runDir, "curve.svg"), state.curve, `${job.metadata.name}: ${a.estimator} + ${a.ratio} ratio`);
  writeFileSync(join(opts.runDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  log(`final success (train sampled, others greedy): ${formatRates(final)} (initial ${formatRates(state.initial)}); ${summary.wallSeconds.toFixed(0)} s`);
  learner.dispose();
  return summary;
}
