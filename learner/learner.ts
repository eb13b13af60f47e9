// The learner: turns a batch of trajectories into one policy update.
//   1. score: recompute proximal log-probs and critic values with the current weights (verl's
//      "old_log_prob" pass), per trajectory, before anything is shuffled;
//   2. estimate: advantages from the registry (step-gae for StepPO), whitened over the batch;
//   3. flatten to step samples, shuffle across trajectories (seeded), PPO epochs over minibatches.
import { eventLoopTurn } from "../core/event-loop.ts";
import { Rng } from "../core/rng.ts";
import type { Trajectory } from "../core/trajectory.ts";
import type { AlgorithmSpec, StepPOJobSpec } from "../crds/steppojob.ts";
import { Adam } from "./adam.ts";
import { tf } from "../policy/backend.ts";
import { targetLogProbs } from "../policy/layers.ts";
import type { Advantages, AdvantageEstimator, EstimatorConfig, ValuedTrajectory } from "./estimators/estimator.ts";
import { getEstimator } from "./estimators/registry.ts";
import { applyWhitening, raggedMoments } from "./estimators/whiten.ts";
import { fitRidge } from "./critic-fit.ts";
import { explainedVariance } from "./diagnostics.ts";
import { minibatchGradients } from "./micro-batch.ts";
import { type ModelConfig, padBatch } from "../policy/model.ts";
import { builtInFactory, type PolicyFactory, type TrainablePolicy } from "../policy/trainable-policy.ts";
import { cloneGradients, type LossConfig, type LossStats, ppoGradients, valueGradients } from "./ppo-loss.ts";
import type { NamedTensor } from "../core/weights-codec.ts";
import { minibatchIndices, sequentialIndices } from "./shuffle.ts";
import type { StepSample } from "./step-batch.ts";

/** A separate critic network exists only for spec.model.critic "separate" and an estimator with a critic (not GRPO, say). */
export function usesSeparateCritic(spec: StepPOJobSpec): boolean {
  return spec.model.critic === "separate" && getEstimator(spec.algorithm.estimator).critic !== "none";
}

/** The step ratio moves far less than a token ratio (a geometric mean), hence GSPO-sized default clips. */
export const DEFAULT_CLIP = { step: 0.05, token: 0.2 } as const;

export interface ResolvedAlgorithm extends AlgorithmSpec {
  gamma: number;
  lambda: number;
  clip: number;
  criticLearningRate: number;
}

export function resolveAlgorithm(spec: AlgorithmSpec): ResolvedAlgorithm {
  const est = getEstimator(spec.estimator);
  return {
    ...spec,
    gamma: spec.gamma ?? est.defaults.gamma,
    lambda: spec.lambda ?? est.defaults.lambda,
    clip: spec.clip ?? DEFAULT_CLIP[spec.ratio],
    criticLearningRate: spec.criticLearningRate ?? spec.learningRate,
  };
}

/** criticLearningRate as a multiple of learningRate on the model's value-head parameters; none when they are equal. */
function criticLearningRateScales(model: TrainablePolicy, a: ResolvedAlgorithm): Map<string, number> | undefined {
  if (a.criticLearningRate === a.learningRate) return undefined;
  return new Map(model.valueHeadParameters.map((name) => [name, a.criticLearningRate / a.learningRate]));
}

export interface UpdateStats extends LossStats {
  steps: number;
  tokens: number;
  minibatches: number;
  gradNorm: number;
  meanReturn: number;
  meanAdvantageAbs: number;
  /** The critic's explained variance on this batch's value targets before the update; null without a critic. */
  explainedVariance: number | null;
  learningRate: number;
  /** Step samples trained per second of this update (scoring, advantages and every epoch included). */
  samplesPerSecond: number;
}

const SCORE_CHUNK = 64;

/** What a behaviour-cloning warm-up did (Learner.warmup). */
export interface CloningResult {
  /** Mean cloning loss of each finished epoch. */
  losses: number[];
  minibatches: number;
  totalMinibatches: number;
  /** The signal stopped it after `minibatches` of `totalMinibatches`. */
  stopped: boolean;
}

/**
 * spec.model.critic "separate": a second network of the policy's architecture that learns values alone,
 * with an Adam of its own at criticLearningRate. Only its value head is ever read (its LM head idles).
 */
export interface SeparateCritic {
  model: TrainablePolicy;
  optimizer: Adam;
}

export class Learner {
  /** The policy trained: the built-in transformer, or spec.model.source's Hugging Face model (policy/trainable-policy.ts). */
  readonly model: TrainablePolicy;
  readonly optimizer: Adam;
  readonly algorithm: ResolvedAlgorithm;
  readonly estimator: AdvantageEstimator;
  /** Frozen post-warm-up policy for the KL penalty; only kept when klCoef > 0. */
  reference?: TrainablePolicy;
  /**
   * The separate critic (spec.model.critic "separate" with an estimator that has a critic): made from the
   * policy by startCritic after the warm-up, or restored from a checkpoint. Absent with a shared critic.
   */
  critic?: SeparateCritic;
  /** Shuffle RNG; part of the checkpointed state. */
  rng: Rng;
  version = 0;
  /** The last update's step samples (pre-update values and advantages): the run dashboard samples episodes from them. */
  lastSamples: StepSample[] = [];

  constructor(
    /** The model's dimensions; dModel is the width of the value head's features. */
    readonly config: ModelConfig,
    readonly spec: StepPOJobSpec,
    private readonly factory: PolicyFactory = builtInFactory(config, spec.seed),
  ) {
    this.algorithm = resolveAlgorithm(spec.algorithm);
    this.estimator = getEstimator(this.algorithm.estimator);
    this.model = factory.create();
    // A separate critic has its own optimiser; the policy's value head is then never trained.
    const scales = this.separateCritic ? undefined : criticLearningRateScales(this.model, this.algorithm);
    this.optimizer = this.adam(this.model, this.algorithm.learningRate, scales);
    this.rng = new Rng(spec.seed ^ 0x51a7);
  }

  /** Whether values come from a separate critic network (usesSeparateCritic). */
  get separateCritic(): boolean {
    return usesSeparateCritic(this.spec);
  }

  /** The network whose value head gives the values: the separate critic, or the policy itself. */
  private get valueModel(): TrainablePolicy {
    if (!this.separateCritic) return this.model;
    if (!this.critic) throw new Error("learner: spec.model.critic is separate, but the critic was neither started (startCritic) nor restored");
    return this.critic.model;
  }

  /**
   * Makes the separate critic a copy of the policy as it is now (after the warm-up, before the critic
   * warm-up fits its value head), with a fresh Adam; a no-op with a shared critic.
   */
  async startCritic(): Promise<void> {
    if (!this.separateCritic) return;
    this.setCritic(this.factory.fromWeights(await this.model.exportWeights()));
  }

  /** Replaces the separate critic with one of these weights (a checkpoint's) and a fresh Adam (importState restores it). */
  restoreCritic(weights: NamedTensor[]): SeparateCritic {
    return this.setCritic(this.factory.fromWeights(weights));
  }

  private setCritic(model: TrainablePolicy): SeparateCritic {
    this.critic?.model.dispose();
    this.critic?.optimizer.dispose();
    this.critic = { model, optimizer: this.adam(model, this.algorithm.criticLearningRate) };
    return this.critic;
  }

  /** The job's Adam (β 0.9/0.999, ε 1e-8, the job's gradient clip) over `model`'s parameters, policy's or critic's alike. */
  private adam(model: TrainablePolicy, learningRate: number, learningRateScales?: Map<string, number>): Adam {
    return new Adam(model.params, { learningRate, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: this.algorithm.maxGradNorm, learningRateScales });
  }

  private lossConfig(): LossConfig {
    const a = this.algorithm;
    return {
      ratio: a.ratio,
      clip: a.clip,
      // A separate critic learns from its own loss (trainCritic): the policy's gradient carries no value loss.
      valueCoef: this.estimator.critic === "none" || this.separateCritic ? 0 : a.valueCoef,
      valueClip: a.valueClip,
      entropyCoef: a.entropyCoef,
      klCoef: a.klCoef,
      importanceCap: a.importanceCap,
      temperature: this.spec.rollout.temperature,
    };
  }

  /**
   * Log-probs of each step's action tokens and the values before each of them, under `model`. The steps go
   * through the model in chunks of similar length (scoringChunks; pass them when the same steps are scored
   * more than once), results in the order given.
   */
  scoreSteps(model: TrainablePolicy, steps: ScoredStep[], chunks = scoringChunks(steps)): { logProbs: Float32Array[]; values: Float32Array[] } {
    const logProbs: Float32Array[] = new Array(steps.length);
    const values: Float32Array[] = new Array(steps.length);
    const temperature = this.spec.rollout.temperature;
    for (const { indices, ids, positions, targets } of chunks) {
      // tidy returns the tensors, not their data: it walks whatever it returns entry by entry, and walking a
      // large Float32Array took a third of an update's time.
      const [scoresT, valuesT] = tf.tidy(() => {
        const { logits, values: vals } = model.headsAt(ids(), positions);
        return [targetLogProbs(logits, targets, temperature), vals];
      });
      const lp = scoresT.dataSync() as Float32Array; // [P]
      const v = valuesT.dataSync() as Float32Array; // [P]
      tf.dispose([scoresT, valuesT]);
      splitRows(lp, indices, steps, logProbs);
      splitRows(v, indices, steps, values);
    }
    for (let i = 0; i < steps.length; i++) {
      logProbs[i] ??= new Float32Array(0);
      values[i] ??= new Float32Array(0);
    }
    return { logProbs, values };
  }

  /** scoreSteps' values alone, through `model`'s value head (no vocabulary head): the separate critic's scoring. */
  stepValues(model: TrainablePolicy, steps: ScoredStep[], chunks = scoringChunks(steps)): Float32Array[] {
    const values: Float32Array[] = new Array(steps.length);
    for (const { indices, ids, positions } of chunks) {
      const valuesT = tf.tidy(() => model.valuesAt(ids(), positions)); // [P], out of tidy as in scoreSteps
      splitRows(valuesT.dataSync() as Float32Array, indices, steps, values);
      valuesT.dispose();
    }
    for (let i = 0; i < steps.length; i++) values[i] ??= new Float32Array(0);
    return values;
  }

  /** Critic value at the last position of each context (bootstrap V(c_T)). */
  private contextValues(contexts: Int32Array[]): Float32Array {
    const out = new Float32Array(contexts.length);
    for (let start = 0; start < contexts.length; start += SCORE_CHUNK) {
      const chunk = contexts.slice(start, start + SCORE_CHUNK);
      const T = Math.max(...chunk.map((c) => c.length));
      const last = Int32Array.from(chunk, (c, b) => b * T + c.length - 1);
      const valuesT = tf.tidy(() => this.valueModel.valuesAt(padBatch(chunk, T), last)); // [B], out of tidy as in scoreSteps
      out.set(valuesT.dataSync() as Float32Array, start);
      valuesT.dispose();
    }
    return out;
  }

  /**
   * Step samples with proximal log-probs, values and (whitened) advantages, in trajectory order.
   * `overrides` replaces the estimator's γ/λ (the critic warm-up fits λ = 1 returns).
   */
  buildSamples(batch: Trajectory[], overrides: Partial<EstimatorConfig> = {}): { samples: StepSample[]; advantages: Advantages[] } {
    const steps = batch.flatMap((t) => t.steps);
    const chunks = scoringChunks(steps);
    const scores = this.scoreSteps(this.model, steps, chunks);
    const logProbs = scores.logProbs;
    // A separate critic scores the same positions again, through its value head alone (an extra forward pass).
    const values = this.separateCritic ? this.stepValues(this.valueModel, steps, chunks) : scores.values;
    const ref = this.reference && this.algorithm.klCoef > 0 ? this.scoreSteps(this.reference, steps, chunks).logProbs : undefined;
    // The step budget is part of these tasks (the agent is not told how many steps remain), so by default
    // running out of steps is scored like a failed episode: V(c_T) = 0. Bootstrapping instead makes
    // stalling worth V(c_T) > 0 while a wrong answer is worth 0, and the policy learns to stop answering.
    const bootstrapping = this.spec.environment.bootstrapOnTruncation && this.estimator.critic !== "none";
    const truncated = bootstrapping ? batch.filter((t) => t.truncated && t.bootstrapContextIds) : [];
    const bootstrap = this.contextValues(truncated.map((t) => t.bootstrapContextIds!));
    const bootstrapById = new Map(truncated.map((t, i) => [t.trajId, bootstrap[i]]));

    let k = 0;
    const valued: ValuedTrajectory[] = batch.map((traj) => {
      const tokenValues = traj.steps.map((_, i) => values[k + i]);
      k += traj.steps.length;
      return {
        traj,
        stepValues: Float32Array.from(tokenValues, (tv) => tv[0] ?? 0),
        tokenValues,
        bootstrapValue: bootstrapById.get(traj.trajId) ?? 0,
      };
    });
    const cfg: EstimatorConfig = { gamma: this.algorithm.gamma, lambda: this.algorithm.lambda, ...overrides };
    const advantages = this.estimator.estimate(valued, cfg);
    const tokenAdvantages = this.whitened(advantages);

    const samples: StepSample[] = [];
    k = 0;
    batch.forEach((traj, ti) => {
      const adv = advantages[ti];
      traj.steps.forEach((step, si) => {
        const idx = k++;
        const L = step.actionIds.length;
        let valueOffsets: Int32Array;
        let valueTargets: Float32Array;
        let oldValues: Float32Array;
        if (this.estimator.critic === "token" && adv.tokenReturns) {
          valueOffsets = Int32Array.from({ length: L }, (_, i) => i);
          valueTargets = adv.tokenReturns[si];
          oldValues = values[idx];
        } else if (this.estimator.critic === "step" && adv.stepReturns) {
          valueOffsets = Int32Array.of(0);
          valueTargets = Float32Array.of(adv.stepReturns[si]);
          oldValues = Float32Array.of(values[idx][0] ?? 0);
        } else {
          valueOffsets = new Int32Array(0);
          valueTargets = new Float32Array(0);
          oldValues = new Float32Array(0);
        }
        samples.push({
          trajId: traj.trajId,
          workerId: traj.workerId,
          policyVersion: traj.policyVersion,
          contextIds: step.contextIds,
          actionIds: step.actionIds,
          behaviourLogProbs: step.logProbs,
          oldLogProbs: logProbs[idx],
          advantages: tokenAdvantages[ti][si],
          valueTargets,
          oldValues,
          valueOffsets,
          refLogProbs: ref?.[idx],
        });
      });
    });
    return { samples, advantages };
  }

  /**
   * Whitens advantages over the batch: statistics over steps (each step counts once, however many
   * tokens it has — docs/algorithm.md) or over tokens (token-level PPO), applied to every token advantage.
   */
  private whitened(advantages: Advantages[]): Float32Array[][] {
    const unit = this.algorithm.whitenAdvantages ? this.estimator.whitenOver : "none";
    if (unit === "none") return advantages.map((a) => a.tokenAdvantages);
    const stats = raggedMoments(unit === "steps" ? advantages.map((a) => a.stepAdvantages) : advantages.flatMap((a) => a.tokenAdvantages));
    return advantages.map((a) => applyWhitening(a.tokenAdvantages, stats));
  }

  /** One learner update on a batch of trajectories. */
  update(batch: Trajectory[]): UpdateStats {
    const started = performance.now();
    const { samples, advantages } = this.buildSamples(batch);
    this.lastSamples = samples;
    const critic = criticTargets(samples);
    const a = this.algorithm;
    const lengths = samples.map((s) => s.contextIds.length + s.actionIds.length);
    const totals: LossStats = { loss: 0, policyLoss: 0, valueLoss: 0, entropy: 0, kl: 0, clipFraction: 0, approxKl: 0 };
    let minibatches = 0;
    let gradNorm = 0;
    const lossCfg = this.lossConfig();
    for (let epoch = 0; epoch < a.epochs; epoch++) {
      const order = a.shuffle.enabled
        ? minibatchIndices(samples.length, a.minibatchSteps, this.rng, { lengths, bucketByLength: a.shuffle.bucketByLength })
        : sequentialIndices(samples.length, a.minibatchSteps);
      for (const idx of order) {
        const minibatch = idx.map((i) => samples[i]);
        const { grads, stats } = minibatchGradients(minibatch, (packed, norm) => ppoGradients(this.model, packed, lossCfg, norm));
        gradNorm += this.optimizer.apply(grads);
        tf.dispose(Object.values(grads));
        // With a separate critic the policy's valueLoss is its idle value head's; the critic's replaces it.
        if (this.critic) stats.valueLoss = this.trainCritic(this.critic, minibatch);
        for (const key of Object.keys(totals) as (keyof LossStats)[]) totals[key] += stats[key];
        minibatches++;
      }
    }
    this.version++;
    for (const key of Object.keys(totals) as (keyof LossStats)[]) totals[key] /= Math.max(1, minibatches);
    const returns = batch.map((t) => t.steps.reduce((s, x) => s + x.reward, 0));
    const absAdv = advantages.flatMap((x) => Array.from(x.stepAdvantages, Math.abs));
    return {
      ...totals,
      steps: samples.length,
      tokens: samples.reduce((s, x) => s + x.actionIds.length, 0),
      minibatches,
      gradNorm: gradNorm / Math.max(1, minibatches),
      meanReturn: returns.reduce((s, x) => s + x, 0) / Math.max(1, returns.length),
      meanAdvantageAbs: absAdv.reduce((s, x) => s + x, 0) / Math.max(1, absAdv.length),
      explainedVariance: explainedVariance(critic.predicted, critic.targets),
      learningRate: this.optimizer.config.learningRate,
      samplesPerSecond: (samples.length * a.epochs) / Math.max(1e-3, (performance.now() - started) / 1000),
    };
  }

  /** One Adam step of the separate critic on its value loss over `minibatch`; returns that loss (before the step). */
  private trainCritic(critic: SeparateCritic, minibatch: StepSample[]): number {
    const { grads, stats } = minibatchGradients(minibatch, (packed, norm) => valueGradients(critic.model, packed, this.algorithm.valueClip, norm));
    critic.optimizer.apply(grads);
    tf.dispose(Object.values(grads));
    return stats.valueLoss;
  }

  /**
   * Critic warm-up (learner/critic-fit.ts): fits the value head (the separate critic's, when there is one)
   * to the λ = 1 returns of `batch`, episodes of the current policy, with the trunk frozen. Returns how many value positions were fitted and the
   * fit's explained variance on them; null for critic-free estimators (GRPO, RLOO, …).
   */
  fitCritic(batch: Trajectory[], ridge: number): { positions: number; explainedVariance: number | null } | null {
    if (this.estimator.critic === "none") return null;
    const { samples } = this.buildSamples(batch, { lambda: 1 });
    const d = this.config.dModel;
    const rows: Float32Array[] = [];
    const targets: number[] = [];
    for (let start = 0; start < samples.length; start += SCORE_CHUNK) {
      const chunk = samples.slice(start, start + SCORE_CHUNK);
      const seqs = chunk.map((s) => concatIds(s.contextIds, s.actionIds));
      const T = Math.max(...seqs.map((s) => s.length));
      const positions: number[] = [];
      chunk.forEach((s, b) => {
        s.valueOffsets.forEach((off, k) => {
          positions.push(b * T + s.contextIds.length - 1 + off);
          targets.push(s.valueTargets[k]);
        });
      });
      if (positions.length === 0) continue;
      const featuresT = tf.tidy(() => this.valueModel.featuresAt(padBatch(seqs, T), Int32Array.from(positions))); // [P, D], out of tidy as in scoreSteps
      const f = featuresT.dataSync() as Float32Array;
      featuresT.dispose();
      for (let i = 0; i < positions.length; i++) rows.push(f.slice(i * d, (i + 1) * d));
    }
    const { w, b } = fitRidge(rows, targets, ridge);
    this.valueModel.setValueHead(w, b);
    const predicted = rows.map((x) => x.reduce((acc, xi, j) => acc + xi * w[j], b));
    return { positions: rows.length, explainedVariance: explainedVariance(predicted, targets) };
  }

  /**
   * Behaviour cloning over demonstration steps (supervised warm-up): the mean loss of each finished epoch.
   * It hands the event loop a turn before every minibatch, so a SIGTERM handler runs during a warm-up of
   * minutes, and it stops there once `signal` is aborted (`stopped`, with how many minibatches it ran).
   */
  async warmup(
    steps: { contextIds: Int32Array; actionIds: Int32Array }[],
    epochs: number,
    minibatchSteps: number,
    learningRate: number,
    signal?: AbortSignal,
  ): Promise<CloningResult> {
    const rlRate = this.optimizer.config.learningRate;
    this.optimizer.config.learningRate = learningRate;
    const losses: number[] = [];
    const empty = new Float32Array(0);
    const samples: StepSample[] = steps.map((s) => ({
      trajId: "",
      workerId: "",
      policyVersion: 0,
      contextIds: s.contextIds,
      actionIds: s.actionIds,
      behaviourLogProbs: new Float32Array(s.actionIds.length),
      oldLogProbs: new Float32Array(s.actionIds.length),
      advantages: new Float32Array(s.actionIds.length),
      valueTargets: empty,
      oldValues: empty,
      valueOffsets: new Int32Array(0),
    }));
    const perEpoch = Math.ceil(samples.length / minibatchSteps);
    let minibatches = 0;
    let stopped = false;
    for (let epoch = 0; epoch < epochs && !stopped; epoch++) {
      let sum = 0;
      let n = 0;
      for (const idx of minibatchIndices(samples.length, minibatchSteps, this.rng)) {
        await eventLoopTurn(); // the signal handlers' turn
        if (signal?.aborted) {
          stopped = true;
          break;
        }
        const { grads, stats } = minibatchGradients(
          idx.map((i) => samples[i]),
          (packed, norm) => cloneGradients(this.model, packed, norm),
        );
        this.optimizer.apply(grads);
        tf.dispose(Object.values(grads));
        sum += stats.loss;
        n++;
        minibatches++;
      }
      if (!stopped) losses.push(sum / Math.max(1, n));
    }
    this.optimizer.config.learningRate = rlRate;
    // Adam's moments from cloning would push the first RL steps along the cloning direction.
    this.optimizer.reset();
    return { losses, minibatches, totalMinibatches: epochs * perEpoch, stopped };
  }

  /** What checkpoints record of the model's origin (learner/checkpoint.ts); undefined for the built-in model. */
  async modelIdentity(): Promise<string[] | undefined> {
    return this.factory.identity?.();
  }

  /** Frees the tensors of the model, the optimiser and the reference (a process running many jobs). */
  dispose(): void {
    this.model.dispose();
    this.optimizer.dispose();
    this.reference?.dispose();
    this.critic?.model.dispose();
    this.critic?.optimizer.dispose();
  }

  /** Freezes a copy of the current policy as the KL reference. */
  async snapshotReference(): Promise<void> {
    if (this.algorithm.klCoef <= 0) return;
    this.restoreReference(await this.model.exportWeights());
  }

  /** Sets the KL reference to the given weights: a checkpoint's copy of the post-warm-up policy. */
  restoreReference(weights: { name: string; shape: number[]; data: Float32Array }[]): void {
    this.reference?.dispose();
    this.reference = this.factory.fromWeights(weights);
  }
}

/** The critic's predictions and targets over every value position of `samples`, flattened. */
function criticTargets(samples: StepSample[]): { predicted: number[]; targets: number[] } {
  const predicted: number[] = [];
  const targets: number[] = [];
  for (const s of samples) {
    for (let k = 0; k < s.valueTargets.length; k++) {
      predicted.push(s.oldValues[k]);
      targets.push(s.valueTargets[k]);
    }
  }
  return { predicted, targets };
}

/** A step as scoring reads it: its context and the action tokens scored after it. */
type ScoredStep = { contextIds: Int32Array; actionIds: Int32Array };

/** One chunk of steps to score together: which steps (indices into the list), their padded ids and where to read. */
interface ScoringChunk {
  indices: number[];
  /** The chunk's sequences [context ; action], padded: [B, T] (a function: made inside the caller's tidy). */
  ids: () => tf.Tensor2D;
  /** Flat b·T + t of every action-predicting position, in step order: position Lc − 1 + i predicts action token i. [P] */
  positions: Int32Array;
  /** The action token each position predicts. [P] */
  targets: Int32Array;
}

/**
 * The steps in chunks of SCORE_CHUNK of similar length (sorted by length), so that each chunk is padded
 * little; chunks without an action token are left out (their steps get empty results).
 */
function scoringChunks(steps: ScoredStep[]): ScoringChunk[] {
  const length = (i: number) => steps[i].contextIds.length + steps[i].actionIds.length;
  const order = steps.map((_, i) => i).sort((a, b) => length(a) - length(b));
  const chunks: ScoringChunk[] = [];
  for (let start = 0; start < steps.length; start += SCORE_CHUNK) {
    const indices = order.slice(start, start + SCORE_CHUNK);
    const chunk = indices.map((i) => steps[i]);
    const seqs = chunk.map((s) => concatIds(s.contextIds, s.actionIds));
    const T = Math.max(...seqs.map((s) => s.length));
    const positions: number[] = [];
    const targets: number[] = [];
    chunk.forEach((s, b) => {
      for (let i = 0; i < s.actionIds.length; i++) {
        positions.push(b * T + s.contextIds.length - 1 + i);
        targets.push(s.actionIds[i]);
      }
    });
    if (positions.length === 0) continue;
    chunks.push({ indices, ids: () => padBatch(seqs, T), positions: Int32Array.from(positions), targets: Int32Array.from(targets) });
  }
  return chunks;
}

/** Cuts a chunk's flat per-position results [P] into each step's action-length rows, stored at the steps' indices. */
function splitRows(flat: Float32Array, indices: number[], steps: ScoredStep[], out: Float32Array[]): void {
  let row = 0;
  for (const i of indices) {
    const L = steps[i].actionIds.length;
    out[i] = flat.slice(row, row + L);
    row += L;
  }
}

function concatIds(a: Int32Array, b: Int32Array): Int32Array {
  const out = new Int32Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
