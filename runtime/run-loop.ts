// The one run loop. Both runtimes run a job through it: the embedded one (`steppo run`: rollouts in this
// process over the in-memory bus, embedded-transport.ts) and the distributed one (`steppo learner`: rollout
// workers elsewhere, over NATS, nats-transport.ts). They differ only in the Transport they plug in; the
// starting state (resume, warm start, warm-up, critic warm-up), the update step, evaluation cadence,
// checkpoint cadence and pruning, the success stop, the env-step budget, the final evaluation, the summary
// and the run directory's files are written here once.
import { eventLoopTurn } from "../core/event-loop.ts";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Trajectory } from "../core/trajectory.ts";
import type { StepPOJob } from "../crds/steppojob.ts";
import type { Environment } from "../envs/environment.ts";
import { restoreLearner, saveLearner } from "../learner/checkpoint.ts";
import type { Learner, UpdateStats } from "../learner/learner.ts";
import { type CurvePoint, writeCurveCsv, writeCurveSvg } from "../learner/report.ts";
import { checkResumeSpec, setAsideCheckpoints } from "../learner/resume-spec.ts";
import { formatRates, type RunSummary, summarize, updatePoint, warmUp, warmUpCritic } from "../learner/run-phases.ts";
import { recordUpdate } from "../learner/run-record.ts";
import { measuredAt, type RunSetup, setUpRun } from "../learner/run-setup.ts";
import { loadWarmStart } from "../learner/warm-start.ts";
import type { TokenPolicy } from "../policy/decoding.ts";
import type { ModelConfig } from "../policy/model.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";
import { freshRunState, readRunState, type RunState, type TransportName } from "./run-state.ts";

export type { RunSummary };

export interface RunLoopOptions {
  /** Overrides spec.training.updates. */
  updates?: number;
  /**
   * Stop after the update that brings the environment steps trained on to at least this many (the last
   * batch may overshoot it by less than one batch); `updates` still bounds the run. Lets runs whose
   * episodes differ in length be compared at one budget of environment steps.
   */
  envStepBudget?: number;
  /**
   * A warm start written by `writeWarmStart` (learner/warm-start.ts) for this job's model, environment and
   * warm-up: a fresh run starts from it instead of warming up itself. A run with checkpoints resumes from those.
   */
  warmStart?: string;
  /** Where the curve, the summary and the per-update records go. */
  runDir: string;
  /** Default spec.checkpoint.dir, else <runDir>/checkpoints. */
  checkpointDir?: string;
  /** Start over: existing checkpoints are moved aside (setAsideCheckpoints) instead of resumed. */
  fresh?: boolean;
  log: (line: string) => void;
  /** Called after every update (progress bar / plain lines). */
  onUpdate?: (p: CurvePoint, total: number) => void;
  /** Aborting it stops before the next update: what was trained on is checkpointed, the run can resume. */
  signal?: AbortSignal;
  /** Wraps the update and the checkpoint (the distributed learner traces them). */
  span?: <T>(name: string, attributes: Record<string, number>, fn: () => Promise<T>) => Promise<T>;
}

/** What a transport is given once the run's starting state is known. */
export interface RunContext {
  job: StepPOJob;
  learner: Learner;
  tokenizer: AgentTokenizer;
  env: Environment;
  policy: TokenPolicy;
  modelConfig: ModelConfig;
  /** The run's state; a transport may add to `rejected` and `excluded`. */
  state: RunState;
  /** The update the run stops at. */
  total: number;
  log: (line: string) => void;
}

export interface Batch {
  /** Checked at intake (learner/trajectory-check.ts): safe to train on. */
  trajectories: Trajectory[];
  /** Samples dropped as too old so far, or null where the transport is on-policy. */
  staleDrops: number | null;
}

/** Where batches come from, and what a runtime does around updates and checkpoints. */
export interface Transport {
  readonly name: TransportName;
  /** The run is told its phase as it goes (the distributed learner publishes it for the operator). */
  phase?(phase: "warmup" | "training", update: number, total: number): Promise<void>;
  /** Starts with what this transport saved in the checkpoint, or undefined on its first run in this directory. */
  open(ctx: RunContext, saved: unknown): Promise<void>;
  /** The next batch for the learner's current version; null when the run was asked to stop. */
  next(): Promise<Batch | null>;
  /** The learner trained on `batch` and made a new version. */
  updated(batch: Batch, stats: UpdateStats, point: CurvePoint): Promise<void>;
  /** After the update's checkpoint, if one was due (accounting, progress). */
  settled?(): Promise<void>;
  /** This transport's part of the next checkpoint. */
  save(): unknown;
  /** The checkpoint (at `path`) holding save()'s state is on disk: what it covers may be acknowledged. */
  saved(path: string): Promise<void>;
  /** Work done since the last checkpoint that a checkpoint must cover before the run ends. */
  unsaved(): boolean;
  /** Ends the transport; on a stop, anything not trained on is given back. */
  close(): Promise<void>;
  /** Extra fields of the run summary. */
  summary(): object;
  /** The run finished and wrote its summary. */
  finished?(summary: RunSummary): Promise<void>;
}

export interface RunResult<S extends RunSummary = RunSummary> {
  /** Present when the job finished (budget, env-step budget or success criterion), absent when stopped by the signal. */
  summary?: S;
  stoppedAt: number;
}

export async function runLoop(job: StepPOJob, transport: Transport, opts: RunLoopOptions): Promise<RunResult> {
  const started = Date.now();
  const spec = job.spec;
  const log = opts.log;
  const total = opts.updates ?? spec.training.updates;
  const span = opts.span ?? ((_n, _a, fn) => fn());
  const setup = await setUpRun(job, log);
  const { learner, tokenizer, config } = setup;
  const a = learner.algorithm;
  log(
    `job ${job.metadata.name}: ${setup.env.name}, estimator ${a.estimator} (γ=${a.gamma}, λ=${a.lambda}), ratio ${a.ratio} (clip ${a.clip}), ` +
      `model ${learner.model.parameterCount()} parameters (d=${config.dModel}, layers=${config.layers}, heads=${config.heads}, ctx=${config.contextLength}), ` +
      `vocab ${tokenizer.size}, ${learner.model.variables.length} trainable variables, ` +
      `${criticWords(learner)}, ${transport.name} runtime`,
  );
  const ckptDir = opts.checkpointDir ?? spec.checkpoint.dir ?? join(opts.runDir, "checkpoints");
  mkdirSync(opts.runDir, { recursive: true });
  const start = await startingState(setup, transport, { ...opts, checkpointDir: ckptDir }, total);
  if (!start) {
    log("stopped before the first update (nothing was checkpointed; the same command starts the run over)");
    learner.dispose();
    return { stoppedAt: learner.version };
  }
  const state = start.state;
  await transport.open(
    { job, learner, tokenizer, env: setup.env, policy: setup.policy, modelConfig: config, state, total, log },
    state.transports[transport.name],
  );

  let savedAt = learner.version; // the update the newest checkpoint holds (or the run's starting point)
  const checkpoint = () =>
    span("checkpoint", { "steppo.update": learner.version }, async () => {
      savedAt = learner.version;
      state.transports[transport.name] = transport.save();
      const path = await saveLearner(ckptDir, spec.checkpoint.keep, learner, tokenizer, state);
      state.checkpoints = [...state.checkpoints.filter((p) => p !== path), path].slice(-spec.checkpoint.keep);
      await transport.saved(path);
    });
  const budgetReached = () => opts.envStepBudget !== undefined && state.envSteps >= opts.envStepBudget;

  await transport.phase?.("training", learner.version, total);
  let finished = learner.version >= total || budgetReached();
  while (!finished) {
    const tUpdate = Date.now();
    await eventLoopTurn(); // a SIGTERM during the last update is seen here, not at the next file write
    const batch = opts.signal?.aborted ? null : await transport.next();
    if (!batch) break;
    const trajs = batch.trajectories;
    const stats = await span("update", { "steppo.update": learner.version + 1, "steppo.trajectories": trajs.length }, async () => learner.update(trajs));
    state.envSteps += stats.steps;
    const point = updatePoint(learner.version, state.envSteps, trajs, stats, tUpdate, batch.staleDrops);
    await transport.updated(batch, stats, point);
    const last = learner.version >= total || budgetReached();
    if (learner.version % spec.training.evalEvery === 0 || last) point.testSuccess = (await setup.evaluate(["test"])).test;
    state.curve.push(point);
    recordUpdate({ runDir: opts.runDir, learner, tokenizer, batch: trajs, curve: state.curve, log });
    opts.onUpdate?.(point, total);
    const target = spec.training.successRate;
    const reached = target !== undefined && point.testSuccess !== null && point.testSuccess >= target;
    if (learner.version % spec.checkpoint.interval === 0 || last || reached) await checkpoint();
    await transport.settled?.();
    if (reached) log(`success criterion ${target} reached at update ${learner.version}`);
    finished = last || reached;
  }

  // A run stopped at update 0 (after the cloning, before the first update) keeps its warm start: the same
  // command then starts from it instead of cloning again.
  const unsavedStart = !finished && state.checkpoints.length === 0;
  if (transport.unsaved() || learner.version !== savedAt || unsavedStart) await checkpoint();
  await transport.close();
  if (!finished) {
    log(`stopped at update ${learner.version} (checkpointed; the run resumes from there)`);
    learner.dispose();
    return { stoppedAt: learner.version };
  }
  const final = await setup.evaluate(undefined, measuredAt(state.curve, learner.version));
  const summary: RunSummary = {
    ...summarize(job, learner, setup.backend, state, final, started, start.restoredFrom),
    ...(state.rejected ? { rejected: state.rejected } : {}),
    ...(state.excluded ? { excluded: state.excluded } : {}),
    ...transport.summary(),
  };
  writeCurveCsv(join(opts.runDir, "curve.csv"), state.curve);
  writeCurveSvg(join(opts.runDir, "curve.svg"), state.curve, `${job.metadata.name}: ${a.estimator} + ${a.ratio} ratio (${transport.name})`);
  writeFileSync(join(opts.runDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  await transport.finished?.(summary);
  log(`final success (train sampled, others greedy): ${formatRates(final)} (initial ${formatRates(state.initial)}); ${summary.wallSeconds.toFixed(0)} s`);
  learner.dispose();
  return { summary, stoppedAt: learner.version };
}

/** The run's critic in words, for the job's first log line. */
function criticWords(learner: Learner): string {
  if (learner.estimator.critic === "none") return "no critic";
  return learner.separateCritic
    ? `a separate critic network (criticLearningRate ${learner.algorithm.criticLearningRate})`
    : "a critic head on the policy's trunk";
}

/**
 * The run's state at its first update: resumed from the run's last checkpoint (whichever runtime wrote it),
 * or a new run from a warm start (in the checkpoint directory or named by `warmStart`), or warmed up here.
 * A new run snapshots the KL reference, evaluates and warms up the critic before its first update.
 * Undefined when the signal stopped the cloning (between minibatches): nothing of it is kept. A signal seen
 * after the initial evaluation skips the critic's warm-up; the run loop then stops at update 0 and its
 * checkpoint keeps the warm start, so a preempted pod does not clone again every time it is restarted.
 */
async function startingState(
  setup: RunSetup,
  transport: Transport,
  opts: RunLoopOptions & { checkpointDir: string },
  total: number,
): Promise<{ state: RunState; restoredFrom?: string } | undefined> {
  const { env, tokenizer, learner, policy, evaluate } = setup;
  const log = opts.log;
  if (opts.fresh) {
    const aside = await setAsideCheckpoints(opts.checkpointDir);
    if (aside) log(`--fresh: moved the existing checkpoints to ${aside}`);
  }
  const restored = await restoreLearner<unknown>(opts.checkpointDir, learner, tokenizer, log);
  let state: RunState;
  if (restored) {
    // A checkpoint trained under another spec is never resumed silently (at update 0: only the warm-up must match).
    checkResumeSpec(restored.path, restored.meta, learner.spec);
    const stored = readRunState(restored.meta.run, learner.version);
    if (stored.kind === "run") {
      const other = stored.wroteBy.filter((t) => t !== transport.name);
      const moved =
        other.length > 0 && !stored.wroteBy.includes(transport.name)
          ? ` (written by the ${other.join(", ")} runtime; ${transport.name} starts its own transport state)`
          : "";
      log(`resumed from ${restored.path} at update ${learner.version}${moved}`);
      return { state: stored.state, restoredFrom: restored.path };
    }
    // A warm start in the run's own checkpoint directory (copied there, or a run stopped before its first update).
    state = freshRunState(stored.initial ?? (await evaluate()), stored.demonstrations);
    log(`started from the warm start ${restored.path}`);
  } else if (opts.warmStart) {
    const warm = await loadWarmStart(opts.warmStart, learner, tokenizer, log);
    state = freshRunState(warm.initial, warm.demonstrations);
    log(`started from the warm start in ${opts.warmStart}`);
  } else {
    let demonstrations: number | undefined;
    if (learner.spec.warmup.enabled) {
      await transport.phase?.("warmup", 0, total);
      const cloned = await warmUp(env, tokenizer, learner, log, opts.signal);
      if (cloned.stopped) return undefined;
      demonstrations = cloned.demonstrations;
    }
    state = freshRunState(await evaluate(), demonstrations);
  }
  await learner.snapshotReference();
  log(`initial success (train sampled, others greedy): ${formatRates(state.initial)}`);
  await eventLoopTurn();
  if (!opts.signal?.aborted) await warmUpCritic(env, tokenizer, learner, policy, log);
  return { state, restoredFrom: restored?.path };
}
