// The PPO objective of docs/algorithm.md (see ppo-loss.ts) evaluated in JavaScript over a packed batch's loss
// positions: its value, its statistics and its gradient with respect to the policy's log-probs and entropies
// and the critic's values there. The objective is elementwise over a few thousand positions; as tensor ops it
// was ~140 kernels a micro-batch (and three scatters of the heads' outputs onto the [B, T] grid and back),
// each a kernel launch costing more than its arithmetic. Float64 arithmetic: the tensor version's value and
// gradients to float rounding (test/unit/ppo-objective.test.ts).
import type { LossConfig, LossStats } from "./ppo-loss.ts";
import type { MinibatchNorm } from "./micro-batch.ts";
import type { PackedBatch } from "./step-batch.ts";

/** What the objective reads at each loss position (flat b·T + t of a packed batch), in the positions' order. */
export interface PositionTerms {
  /** The loss positions themselves. [P] */
  positions: Int32Array;
  /** The step (batch row) of each position. [P] */
  step: Int32Array;
  /** 1 where an action token is predicted. [P] */
  action: Uint8Array;
  /** 1 where the critic is trained. [P] */
  value: Uint8Array;
  oldLogProbs: Float32Array;
  advantages: Float32Array;
  refLogProbs: Float32Array;
  /** The truncated behaviour → proximal importance weight ρ (one per step in step mode). [P] */
  importance: Float32Array;
  valueTargets: Float32Array;
  oldValues: Float32Array;
  /** 1 / L_b of each step b. [B] */
  invLength: Float32Array;
}

/** Every action-predicting position of `p` and, with `values`, every value position, as flat b·T + t, in order. */
export function lossPositions(p: PackedBatch, values = true): Int32Array {
  const out: number[] = [];
  for (let i = 0; i < p.actionMask.length; i++) if (p.actionMask[i] || (values && p.valueMask[i])) out.push(i);
  return Int32Array.from(out);
}

/** The packed batch's arrays at its loss positions, with the importance weights of `ratio` mode capped at `cap`. */
export function positionTerms(p: PackedBatch, ratio: LossConfig["ratio"], cap: number): PositionTerms {
  const positions = lossPositions(p);
  const at = (grid: Float32Array) => Float32Array.from(positions, (i) => grid[i]);
  const step = Int32Array.from(positions, (i) => Math.floor(i / p.T));
  const action = Uint8Array.from(positions, (i) => p.actionMask[i]);
  const oldLogProbs = at(p.oldLogProbs);
  const behaviour = at(p.behaviourLogProbs);
  // ρ = min(π_old / π_behaviour, cap): per step from the mean log-ratio of its tokens, or per token.
  const stepLogRatio = new Float64Array(p.B);
  positions.forEach((_, k) => {
    if (action[k]) stepLogRatio[step[k]] += oldLogProbs[k] - behaviour[k];
  });
  const importance = Float32Array.from(positions, (_, k) => {
    if (!action[k]) return 0;
    const logRatio = ratio === "step" ? stepLogRatio[step[k]] * p.invLength[step[k]] : oldLogProbs[k] - behaviour[k];
    return Math.min(Math.exp(logRatio), cap);
  });
  return {
    positions,
    step,
    action,
    value: Uint8Array.from(positions, (i) => p.valueMask[i]),
    oldLogProbs,
    advantages: at(p.advantages),
    refLogProbs: at(p.refLogProbs),
    importance,
    valueTargets: at(p.valueTargets),
    oldValues: at(p.oldValues),
    invLength: p.invLength,
  };
}

export interface Objective {
  /** The loss: policy loss + valueCoef · value loss − entropyCoef · entropy + klCoef · KL. */
  loss: number;
  stats: Omit<LossStats, "loss">;
  /** ∂loss/∂ of each input at each position. [P] each */
  dLogProbs: Float32Array;
  dEntropy: Float32Array;
  dValues: Float32Array;
}

/**
 * The objective at the positions of `t`, given the current log-probs, entropies and values there. Averages
 * over `norm`'s counts (the whole minibatch's when `t` is one micro-batch of it). Where the tensor version's
 * min, max and clip pass a gradient to one side, this passes it to the same side (ties included).
 */
export function ppoObjective(
  logProbs: ArrayLike<number>,
  entropy: ArrayLike<number>,
  values: ArrayLike<number>,
  t: PositionTerms,
  cfg: LossConfig,
  norm: MinibatchNorm,
): Objective {
  const P = t.positions.length;
  const nValue = Math.max(1, norm.valuePositions);
  const nTokens = Math.max(1, norm.tokens);
  // Each action token of step b weighs 1 / (L_b · steps) in the seq-mean-token-mean terms.
  const tokenWeight = (k: number) => t.invLength[t.step[k]] / norm.steps;
  const dLogProbs = new Float32Array(P);
  const dEntropy = new Float32Array(P);
  const dValues = new Float32Array(P);

  // Ratios: step mode shares exp(mean log-ratio of the step's tokens) across them.
  const stepLogRatio = new Float64Array(t.invLength.length);
  for (let k = 0; k < P; k++) if (t.action[k]) stepLogRatio[t.step[k]] += logProbs[k] - t.oldLogProbs[k];
  const stepRatio = Float64Array.from(stepLogRatio, (s, b) => Math.exp(s * t.invLength[b]));
  const ratioAt = (k: number) => (cfg.ratio === "step" ? stepRatio[t.step[k]] : Math.exp(logProbs[k] - t.oldLogProbs[k]));

  let policyLoss = 0;
  let entropyMean = 0;
  let kl = 0;
  let clipped = 0;
  let approxKl = 0;
  const dStepRatio = new Float64Array(t.invLength.length); // ∂policy loss/∂w_b, step mode
  for (let k = 0; k < P; k++) {
    if (!t.action[k]) continue;
    const w = tokenWeight(k);
    const ratio = ratioAt(k);
    const adv = t.advantages[k];
    const rho = t.importance[k];
    const bounded = Math.min(Math.max(ratio, 1 - cfg.clip), 1 + cfg.clip);
    const unclippedTerm = ratio * adv;
    const clippedTerm = bounded * adv;
    const takesUnclipped = unclippedTerm <= clippedTerm;
    policyLoss -= Math.min(unclippedTerm, clippedTerm) * rho * w;
    // −min(r·A, clip(r)·A)·ρ: the gradient runs through the side min takes, and through clip only inside its bounds.
    const insideClip = ratio >= 1 - cfg.clip && ratio <= 1 + cfg.clip;
    const dRatio = takesUnclipped || insideClip ? -adv * rho * w : 0;
    if (cfg.ratio === "step") dStepRatio[t.step[k]] += dRatio;
    else dLogProbs[k] += dRatio * ratio;

    entropyMean += entropy[k] * w;
    if (cfg.entropyCoef > 0) dEntropy[k] = -cfg.entropyCoef * w;

    // k3 estimator of KL(π_θ ‖ π_ref): exp(d) − d − 1 with d = log π_ref − log π_θ.
    const d = t.refLogProbs[k] - logProbs[k];
    kl += (Math.exp(d) - d - 1) * w;
    if (cfg.klCoef > 0) dLogProbs[k] += cfg.klCoef * (1 - Math.exp(d)) * w;

    if (Math.abs(ratio - 1) > cfg.clip) clipped++;
    approxKl -= logProbs[k] - t.oldLogProbs[k];
  }
  if (cfg.ratio === "step") {
    // w_b = exp(Σ_i (log π − log π_old) / L_b): ∂w_b/∂log π_i = w_b / L_b for each of the step's tokens.
    for (let k = 0; k < P; k++) if (t.action[k]) dLogProbs[k] += dStepRatio[t.step[k]] * stepRatio[t.step[k]] * t.invLength[t.step[k]];
  }

  let valueLoss = 0;
  for (let k = 0; k < P; k++) {
    if (!t.value[k]) continue;
    const { sq, dSq } = squaredValueError(values[k], t.valueTargets[k], t.oldValues[k], cfg.valueClip);
    valueLoss += (0.5 * sq) / nValue;
    dValues[k] = (cfg.valueCoef * 0.5 * dSq) / nValue;
  }

  let loss = policyLoss + cfg.valueCoef * valueLoss;
  if (cfg.entropyCoef > 0) loss -= cfg.entropyCoef * entropyMean;
  if (cfg.klCoef > 0) loss += cfg.klCoef * kl;
  return {
    loss,
    stats: { policyLoss, valueLoss, entropy: entropyMean, kl, clipFraction: clipped / nTokens, approxKl: approxKl / nTokens },
    dLogProbs,
    dEntropy,
    dValues,
  };
}

/**
 * One value position's squared error (V − target)², or with `valueClip` the larger of it and the clipped
 * one (V moved at most valueClip from its old value), and its derivative with respect to V.
 */
function squaredValueError(v: number, target: number, old: number, valueClip: number | undefined): { sq: number; dSq: number } {
  const err = v - target;
  let sq = err * err;
  let dSq = 2 * err; // ∂(squared error)/∂V
  if (valueClip !== undefined) {
    const moved = v - old;
    const clippedErr = old + Math.min(Math.max(moved, -valueClip), valueClip) - target;
    if (sq < clippedErr * clippedErr) {
      sq = clippedErr * clippedErr;
      dSq = moved >= -valueClip && moved <= valueClip ? 2 * clippedErr : 0;
    }
  }
  return { sq, dSq };
}

/** What the separate critic's objective reads at its positions (the value positions of a packed batch). [P] each */
export interface ValueTerms {
  positions: Int32Array;
  valueTargets: Float32Array;
  oldValues: Float32Array;
}

/** The value positions of `p` (flat b·T + t, in order) with their targets and old values. */
export function valueTerms(p: PackedBatch): ValueTerms {
  const out: number[] = [];
  for (let i = 0; i < p.valueMask.length; i++) if (p.valueMask[i]) out.push(i);
  const positions = Int32Array.from(out);
  return {
    positions,
    valueTargets: Float32Array.from(positions, (i) => p.valueTargets[i]),
    oldValues: Float32Array.from(positions, (i) => p.oldValues[i]),
  };
}

/**
 * The separate critic's objective (spec.model.critic "separate"): the value loss alone, ½ (V − target)²
 * (clipped as in ppoObjective) averaged over the minibatch's value positions, and its gradient. No
 * valueCoef: the critic has an optimiser of its own, so there is no policy loss to weigh it against.
 */
export function valueObjective(
  values: ArrayLike<number>,
  t: ValueTerms,
  valueClip: number | undefined,
  norm: Pick<MinibatchNorm, "valuePositions">,
): { loss: number; dValues: Float32Array } {
  const nValue = Math.max(1, norm.valuePositions);
  const dValues = new Float32Array(t.positions.length);
  let loss = 0;
  for (let k = 0; k < t.positions.length; k++) {
    const { sq, dSq } = squaredValueError(values[k], t.valueTargets[k], t.oldValues[k], valueClip);
    loss += (0.5 * sq) / nValue;
    dValues[k] = (0.5 * dSq) / nValue;
  }
  return { loss, dValues };
}
