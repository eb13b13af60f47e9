// The phases every runner shares — the embedded `steppo run`, the `steppo learner` process and the
// benchmarks — so a job starts, and is summarised, the same way wherever it runs.
import { Rng } from "../core/rng.ts";
import type { StepPOJob } from "../crds/steppojob.ts";
import { type EpisodeRequest, runEpisodes, type TokenPolicy } from "../workers/agent-loop.ts";
import type { Environment } from "../envs/environment.ts";
import { collectDemonstrations } from "./demonstrations.ts";
import { VALIDATION_SET } from "./evaluation.ts";
import type { Trajectory } from "../core/trajectory.ts";
import type { Learner, UpdateStats } from "./learner.ts";
import type { CurvePoint } from "./report.ts";
import type { AgentTokenizer } from "../policy/agent-tokenizer.ts";

/** What a warm-up did: cloned to its end (with the demonstrations' own success rate), or stopped. */
export type WarmUpResult = { stopped: false; demonstrations: number } | { stopped: true };

/**
 * Behaviour cloning on scripted demonstrations. `signal` stops the cloning between two minibatches; nothing
 * of a stopped warm-up is kept (the run's next start clones again, from the same seed).
 */
export async function warmUp(
  env: Environment,
  tokenizer: AgentTokenizer,
  learner: Learner,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<WarmUpResult> {
  const spec = learner.spec;
  const w = spec.warmup;
  const demos = await collectDemonstrations(env, tokenizer, new Rng(spec.seed ^ 0xd3e0), {
    episodes: w.demonstrations,
    suboptimalFraction: w.suboptimalFraction,
    maxSteps: spec.environment.maxSteps,
    maxStepTokens: spec.environment.maxStepTokens,
    contextLength: learner.config.contextLength,
  });
  const t0 = Date.now();
  log(`warm-up: cloning ${demos.steps.length} steps from ${w.demonstrations} demonstrations, ${w.epochs} epochs of ${w.minibatchSteps}-step minibatches`);
  const r = await learner.warmup(demos.steps, w.epochs, w.minibatchSteps, w.learningRate, signal);
  const took = `${((Date.now() - t0) / 1000).toFixed(0)} s`;
  if (r.stopped) {
    log(`warm-up: stopped by the signal after ${r.minibatches} of ${r.totalMinibatches} minibatches (${took}); nothing of it is kept`);
    return { stopped: true };
  }
  log(
    `warm-up: cloned ${demos.steps.length} steps from ${w.demonstrations} demonstrations (success ${demos.successRate.toFixed(2)}), ` +
      `loss ${r.losses.map((l) => l.toFixed(3)).join(" → ")} in ${took}`,
  );
  return { stopped: false, demonstrations: demos.successRate };
}

/**
 * Critic warm-up (learner/critic-fit.ts): a separate critic (spec.model.critic) is made a copy of the
 * starting policy first; then episodes of the starting policy on training tasks, sampled as rollouts are,
 * and the value head (the separate critic's, or the policy's own) fitted to their returns. Its own RNG, so every row of a comparison that
 * shares a warm start fits on the same episodes. Returns the fit's explained variance, or null when the
 * estimator has no critic or the job asks for no warm-up of it.
 */
export async function warmUpCritic(
  env: Environment,
  tokenizer: AgentTokenizer,
  learner: Learner,
  policy: TokenPolicy,
  log: (line: string) => void,
): Promise<number | null> {
  const spec = learner.spec;
  const { episodes, ridge } = spec.algorithm.criticWarmup;
  await learner.startCritic();
  if (episodes === 0 || learner.estimator.critic === "none") return null;
  const t0 = Date.now();
  const rng = new Rng(spec.seed ^ 0xc417);
  const requests: EpisodeRequest[] = Array.from({ length: episodes }, (_, i) => ({
    task: env.sampleTask(rng, "train"),
    groupId: `critic-warmup${i}`,
    trajId: `critic-warmup${i}`,
  }));
  const trajs = await runEpisodes(env, requests, policy, tokenizer, rng, {
    workerId: "critic-warmup",
    policyVersion: learner.version,
    maxSteps: spec.environment.maxSteps,
    maxStepTokens: spec.environment.maxStepTokens,
    contextLength: learner.config.contextLength,
    temperature: spec.rollout.temperature,
    greedy: false,
  });
  const fit = learner.fitCritic(trajs, ridge);
  if (!fit) return null;
  const success = trajs.filter((t) => t.success).length / trajs.length;
  log(
    `critic warm-up: ${learner.separateCritic ? "the separate critic's" : "the"} value head fitted to ${fit.positions} returns of ${episodes} episodes (success ${success.toFixed(2)}), ` +
      `explained variance ${fit.explainedVariance?.toFixed(2) ?? "n/a"} on them, in ${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  return fit.explainedVariance;
}

export interface RunSummary {
  job: string;
  updates: number;
  envSteps: number;
  estimator: string;
  ratio: string;
  gamma: number;
  lambda: number;
  clip: number;
  backend: string;
  parameters: number;
  /** In-domain training questions, sampled at the rollout temperature (what RL optimises). */
  successRate: { initial: number; final: number; demonstrations?: number };
  /** Held-out in-domain questions, greedy. */
  test: { initial: number; final: number };
  /**
   * The validation split, greedy like test (for choosing settings); absent where the environment serves no
   * validation split. `initial` is absent for a run started from a warm start written before the split existed.
   */
  validation?: { initial?: number; final: number };
  /** Held-out families, greedy, after training. */
  ood: Record<string, number>;
  oodInitial: Record<string, number>;
  checkpoints: string[];
  resumedFrom?: string;
  /** Embedded runs: trajectories refused at intake (trajectory-check.ts), by cause; absent when none were. */
  rejected?: Partial<Record<string, number>>;
  /**
   * Embedded runs: episodes left out of training, never scored: `envFaults` counts those an environment fault
   * hit plus the rest of their groups, `oversized` those too large for the bus; absent when none were.
   */
  excluded?: { envFaults: number; oversized: number };
  wallSeconds: number;
  curve: CurvePoint[];
}

/** What a runner has recorded by the end of a run (a subset of its checkpointed state). */
export interface RunRecord {
  envSteps: number;
  initial: Record<string, number>;
  demonstrations?: number;
  checkpoints: string[];
  curve: CurvePoint[];
}

export function summarize(
  job: StepPOJob,
  learner: Learner,
  backend: string,
  record: RunRecord,
  final: Record<string, number>,
  started: number,
  resumedFrom?: string,
): RunSummary {
  const a = learner.algorithm;
  const { train: finalTrain, test: finalTest, [VALIDATION_SET]: finalValidation, ...ood } = final;
  const { train: initialTrain, test: initialTest, [VALIDATION_SET]: initialValidation, ...oodInitial } = record.initial;
  return {
    job: job.metadata.name,
    updates: learner.version,
    envSteps: record.envSteps,
    estimator: a.estimator,
    ratio: a.ratio,
    gamma: a.gamma,
    lambda: a.lambda,
    clip: a.clip,
    backend,
    parameters: learner.model.parameterCount(),
    successRate: { initial: initialTrain, final: finalTrain, demonstrations: record.demonstrations },
    test: { initial: initialTest, final: finalTest },
    ...(finalValidation === undefined ? {} : { validation: { initial: initialValidation, final: finalValidation } }),
    ood,
    oodInitial,
    checkpoints: record.checkpoints,
    resumedFrom,
    wallSeconds: (Date.now() - started) / 1000,
    curve: record.curve,
  };
}

export function formatRates(r: Record<string, number>): string {
  return Object.entries(r)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(", ");
}

/** The learning-curve row of one update (test success is filled in where the runner evaluates). */
export function updatePoint(
  version: number,
  envSteps: number,
  batch: Trajectory[],
  stats: UpdateStats,
  startedMs: number,
  staleDrops: number | null = null,
): CurvePoint {
  // The update made `version`; its batch was trained by version − 1.
  const lags = batch.map((t) => version - 1 - t.policyVersion);
  return {
    update: version,
    envSteps,
    trainSuccess: batch.filter((t) => t.success).length / batch.length,
    testSuccess: null,
    meanReturn: stats.meanReturn,
    meanEpisodeLength: batch.length ? batch.reduce((n, t) => n + t.steps.length, 0) / batch.length : null,
    policyLoss: stats.policyLoss,
    valueLoss: stats.valueLoss,
    entropy: stats.entropy,
    clipFraction: stats.clipFraction,
    approxKl: stats.approxKl,
    explainedVariance: stats.explainedVariance,
    gradNorm: stats.gradNorm,
    learningRate: stats.learningRate,
    policyLag: lags.length ? lags.reduce((a, b) => a + b, 0) / lags.length : null,
    staleDrops,
    samplesPerSecond: stats.samplesPerSecond,
    seconds: (Date.now() - startedMs) / 1000,
  };
}

/** The curve's first row: the policy before any update, with its greedy held-out success. */
export function initialPoint(testSuccess: number): CurvePoint {
  return {
    update: 0,
    envSteps: 0,
    trainSuccess: null,
    testSuccess,
    meanReturn: null,
    meanEpisodeLength: null,
    policyLoss: null,
    valueLoss: null,
    entropy: null,
    clipFraction: null,
    approxKl: null,
    explainedVariance: null,
    gradNorm: null,
    learningRate: null,
    policyLag: null,
    staleDrops: null,
    samplesPerSecond: null,
    seconds: 0,
  };
}
