// The PPO objective of docs/algorithm.md on one packed minibatch of step samples.
//
//   ratio (step mode):  w_t = exp( (1/L_t) Σ_i [log π_θ(y_{t,i}) − log π_old(y_{t,i})] )  shared by the step
//   ratio (token mode): r_{t,i} = exp( log π_θ(y_{t,i}) − log π_old(y_{t,i}) )
//   policy loss per token: −min(ratio · Â, clip(ratio, 1−ε, 1+ε) · Â) · ρ_b
//   aggregation "seq-mean-token-mean": mean over a step's tokens, then over steps.
//   ρ_b = min(π_old / π_behaviour, cap): the truncated importance weight correcting for the gap between
//   the policy that generated the sample and the proximal policy (decoupled PPO, as in AReaL).
//   value loss: ½ (V − target)² only where valueMask is set (step boundaries for StepPO).
// The objective itself is evaluated in JavaScript at the loss positions (ppo-objective.ts), one op between
// the heads' outputs and the loss.
import type { RatioMode } from "../crds/steppojob.ts";
import { tf } from "../policy/backend.ts";
import type { MinibatchNorm } from "./micro-batch.ts";
import { targetLogProbs, targetLogProbsAndEntropy } from "../policy/layers.ts";
import { type PolicyNetwork, parameterNames } from "../policy/policy-network.ts";
import { lossPositions, type Objective, positionTerms, ppoObjective, valueObjective, valueTerms } from "./ppo-objective.ts";
import type { PackedBatch } from "./step-batch.ts";

export interface LossConfig {
  ratio: RatioMode;
  clip: number;
  valueCoef: number;
  valueClip?: number;
  entropyCoef: number;
  klCoef: number;
  importanceCap: number;
  temperature: number;
}

export interface LossStats {
  loss: number;
  policyLoss: number;
  valueLoss: number;
  entropy: number;
  kl: number;
  clipFraction: number;
  approxKl: number;
}

/** tf.tidy for results that are not tensors: frees every intermediate except tensors passed to tf.keep. */
export function scoped<R>(fn: () => R): R {
  tf.engine().startScope();
  try {
    return fn();
  } finally {
    tf.engine().endScope();
  }
}

/** The counts of `p` itself, for a packed batch that is a whole minibatch. */
export function ownNorm(p: PackedBatch): MinibatchNorm {
  let tokens = 0;
  let valuePositions = 0;
  for (let i = 0; i < p.actionMask.length; i++) {
    tokens += p.actionMask[i];
    valuePositions += p.valueMask[i];
  }
  return { steps: p.B, tokens, valuePositions };
}

/**
 * A scalar loss computed in JavaScript as one differentiable op: `evaluate` reads the inputs' data once and
 * returns the loss and its gradient with respect to each input (same shapes, flat). Why: the objectives
 * (ppo-objective.ts) are a handful of per-position formulas, and as tfjs ops they would be dozens of small
 * kernels over tensors of a few hundred entries.
 */
function jsLossOp(inputs: tf.Tensor[], evaluate: (data: Float32Array[]) => { loss: number; grads: Float32Array[] }): tf.Scalar {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const xs = args.slice(0, inputs.length) as tf.Tensor[];
    const { loss, grads } = evaluate(xs.map((x) => x.dataSync() as Float32Array));
    return {
      value: tf.scalar(loss),
      gradFunc: (dy) => xs.map((x, i) => tf.mul(dy as tf.Tensor, tf.tensor(grads[i], x.shape))),
    };
  });
  return f(...inputs) as tf.Scalar;
}

/**
 * The PPO objective as one op of the heads' outputs at the loss positions: scores [2, P] (row 0 the
 * log-probs, row 1 the entropies: targetLogProbsAndEntropy) and values [P] → the loss, a scalar.
 */
function objectiveOp(
  scores: tf.Tensor2D,
  values: tf.Tensor1D,
  evaluate: (logProbs: Float32Array, entropy: Float32Array, values: Float32Array) => Objective,
): tf.Scalar {
  const P = values.size;
  return jsLossOp([scores, values], ([s, v]) => {
    const o = evaluate(s.subarray(0, P), s.subarray(P, 2 * P), v);
    const dScores = new Float32Array(2 * P);
    dScores.set(o.dLogProbs);
    dScores.set(o.dEntropy, P);
    return { loss: o.loss, grads: [dScores, o.dValues] };
  });
}

/** tf.variableGrads' gradients (keyed by tfjs variable name) by parameter name, kept past the scope. */
function keptByName(model: PolicyNetwork, grads: tf.NamedTensorMap): Record<string, tf.Tensor> {
  const names = parameterNames(model);
  return Object.fromEntries(Object.entries(grads).map(([variable, g]) => [names.get(variable)!, tf.keep(g)]));
}

/**
 * Runs forward + backward on one packed batch; returns the gradients by parameter name and statistics.
 * Losses and statistics average over `norm`'s counts: those of `p` by default, the whole minibatch's when
 * `p` is one of its micro-batches (the shares then add up to the minibatch's values). Only the loss
 * positions go through the heads and the log-softmax over the vocabulary (PolicyModel.headsAt).
 */
export function ppoGradients(
  model: PolicyNetwork,
  p: PackedBatch,
  cfg: LossConfig,
  norm: MinibatchNorm = ownNorm(p),
): { grads: Record<string, tf.Tensor>; stats: LossStats } {
  const terms = positionTerms(p, cfg.ratio, cfg.importanceCap);
  const targets = Int32Array.from(terms.positions, (i) => p.targets[i]);
  return scoped(() => {
    const ids = tf.tensor2d(p.ids, [p.B, p.T], "int32");
    let objective: Objective | undefined;
    const { grads } = tf.variableGrads(() => {
      const { logits, values } = model.headsAt(ids, terms.positions); // [P, V], [P]
      const scores = targetLogProbsAndEntropy(logits, targets, cfg.temperature); // [2, P]
      return objectiveOp(scores, values, (logProbs, entropy, v) => {
        objective = ppoObjective(logProbs, entropy, v, terms, cfg, norm);
        return objective;
      });
    }, model.variables);
    const byName = keptByName(model, grads);
    const o = objective!;
    return { grads: byName, stats: { loss: o.loss, ...o.stats } };
  });
}

/**
 * The separate critic's gradient on one packed batch (spec.model.critic "separate"): the value loss alone
 * (ppo-objective.ts valueObjective), read through the critic's value head at the value positions only,
 * so neither the vocabulary head nor the log-softmax runs. Averages over `norm` as ppoGradients does.
 */
export function valueGradients(
  critic: PolicyNetwork,
  p: PackedBatch,
  valueClip: number | undefined,
  norm: MinibatchNorm = ownNorm(p),
): { grads: Record<string, tf.Tensor>; stats: { valueLoss: number } } {
  const terms = valueTerms(p);
  return scoped(() => {
    const ids = tf.tensor2d(p.ids, [p.B, p.T], "int32");
    let loss = 0;
    const { grads } = tf.variableGrads(() => {
      const values = critic.valuesAt(ids, terms.positions); // [P]
      return jsLossOp([values], ([v]) => {
        const o = valueObjective(v, terms, valueClip, norm);
        loss = o.loss;
        return { loss: o.loss, grads: [o.dValues] };
      });
    }, critic.variables);
    return { grads: keptByName(critic, grads), stats: { valueLoss: loss } };
  });
}

/**
 * Behaviour cloning on demonstration steps: −log π(a_t | c_t), seq-mean-token-mean over `norm.steps`, as a
 * weighted sum over the action-predicting positions: each of step b's tokens weighs 1 / (L_b · steps). Only
 * the log-probs are read (no values, no entropy), at those positions alone.
 */
export function cloneGradients(
  model: PolicyNetwork,
  p: PackedBatch,
  norm: Pick<MinibatchNorm, "steps"> = { steps: p.B },
): { grads: Record<string, tf.Tensor>; stats: { loss: number } } {
  return scoped(() => {
    const ids = tf.tensor2d(p.ids, [p.B, p.T], "int32");
    const positions = lossPositions(p, false); // the log-probs alone: no value positions
    const targets = Int32Array.from(positions, (i) => p.targets[i]);
    const weights = tf.tensor1d(Float32Array.from(positions, (i) => -p.invLength[Math.floor(i / p.T)] / norm.steps)); // [P]
    const { value, grads } = tf.variableGrads(() => {
      const picked = targetLogProbs(model.logitsAt(ids, positions), targets, 1); // [P]
      return tf.sum(tf.mul(picked, weights)) as tf.Scalar;
    }, model.variables);
    const byName = keptByName(model, grads);
    return { grads: byName, stats: { loss: value.dataSync()[0] } };
  });
}
