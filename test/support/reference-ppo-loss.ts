// The PPO loss of learner/ppo-loss.ts as tensor ops, as it was before the objective moved to JavaScript
// (learner/ppo-objective.ts): the heads' outputs scattered onto the packed batch's [B, T] grid and the loss
// written with tfjs ops and tfjs's own gradients. The reference the JavaScript objective must reproduce (the
// bookkeeping helpers, scoped/ownNorm/lossPositions, are the learner's own: only the maths is re-done here).
import { tf } from "../../policy/backend.ts";
import { targetLogProbsAndEntropy } from "../../policy/layers.ts";
import { type PolicyModel, scatterRows } from "../../policy/model.ts";
import type { MinibatchNorm } from "../../learner/micro-batch.ts";
import { type LossConfig, type LossStats, ownNorm, scoped } from "../../learner/ppo-loss.ts";
import { lossPositions } from "../../learner/ppo-objective.ts";
import type { RatioMode } from "../../crds/steppojob.ts";
import type { PackedBatch } from "../../learner/step-batch.ts";

/** Truncated behaviour→proximal importance weights per token [B, T] (per step in step mode). */
function importanceWeights(p: PackedBatch, ratio: RatioMode, cap: number): Float32Array {
  const w = new Float32Array(p.B * p.T);
  for (let b = 0; b < p.B; b++) {
    const row = b * p.T;
    if (ratio === "step") {
      let s = 0;
      for (let t = 0; t < p.T; t++) if (p.actionMask[row + t]) s += p.oldLogProbs[row + t] - p.behaviourLogProbs[row + t];
      const stepWeight = Math.min(Math.exp(s * p.invLength[b]), cap);
      for (let t = 0; t < p.T; t++) w[row + t] = p.actionMask[row + t] ? stepWeight : 0;
    } else {
      for (let t = 0; t < p.T; t++) w[row + t] = p.actionMask[row + t] ? Math.min(Math.exp(p.oldLogProbs[row + t] - p.behaviourLogProbs[row + t]), cap) : 0;
    }
  }
  return w;
}

/**
 * Mean over each step's action tokens, then over the minibatch's `steps` (this packed batch may hold
 * only some of them: a micro-batch, learner/micro-batch.ts). x: [B, T] → scalar.
 */
function seqMeanTokenMean(x: tf.Tensor2D, mask: tf.Tensor2D, invLength: tf.Tensor1D, steps: number): tf.Scalar {
  return tf.div(tf.sum(tf.mul(tf.sum(tf.mul(x, mask), 1), invLength)), steps);
}

/**
 * Log-prob of each target token, the policy's entropy and the critic's value, at `positions` only (zero
 * elsewhere), laid out [B, T] like the batch. Only the rows the loss reads go through the heads and the
 * log-softmax over the vocabulary (PolicyModel.headsAt): the same values as a full forward pass.
 */
export function tokenLogProbs(model: PolicyModel, ids: tf.Tensor2D, targets: Int32Array, temperature: number, positions: Int32Array) {
  const [B, T] = ids.shape;
  const { logits, values } = model.headsAt(ids, positions); // [P, V], [P]
  const scores = targetLogProbsAndEntropy(
    logits,
    Int32Array.from(positions, (i) => targets[i]),
    temperature,
  ); // [2, P]
  const [pickedP, entropyP] = tf.split(scores, 2, 0).map((t) => tf.reshape(t, [positions.length]) as tf.Tensor1D);
  const grid = (x: tf.Tensor1D) => tf.reshape(scatterRows(x, positions, B * T), [B, T]) as tf.Tensor2D;
  return { picked: grid(pickedP), entropy: grid(entropyP), values: grid(values) };
}

/**
 * Runs forward + backward on one packed batch; returns the gradients by parameter name and statistics.
 * Losses and statistics average over `norm`'s counts: those of `p` by default, the whole minibatch's when
 * `p` is one of its micro-batches (the shares then add up to the minibatch's values).
 */
export function referencePpoGradients(
  model: PolicyModel,
  p: PackedBatch,
  cfg: LossConfig,
  norm: MinibatchNorm = ownNorm(p),
): { grads: Record<string, tf.Tensor>; stats: LossStats } {
  const rho = importanceWeights(p, cfg.ratio, cfg.importanceCap);
  return scoped(() => {
    const shape: [number, number] = [p.B, p.T];
    const ids = tf.tensor2d(p.ids, shape, "int32");
    const positions = lossPositions(p);
    const mask = tf.tensor2d(p.actionMask, shape);
    const invLength = tf.tensor1d(p.invLength);
    const adv = tf.tensor2d(p.advantages, shape);
    const oldLogp = tf.tensor2d(p.oldLogProbs, shape);
    const refLogp = tf.tensor2d(p.refLogProbs, shape);
    const rhoT = tf.tensor2d(rho, shape);
    const vMask = tf.tensor2d(p.valueMask, shape);
    const vTarget = tf.tensor2d(p.valueTargets, shape);
    const vOld = tf.tensor2d(p.oldValues, shape);
    const nValue = Math.max(1, norm.valuePositions);
    const nTokens = Math.max(1, norm.tokens);

    let stats: Record<string, tf.Scalar> = {};
    const names = [...model.params.keys()];
    const { value, grads } = tf.variableGrads(() => {
      const { picked, entropy: entropyPerPos, values } = tokenLogProbs(model, ids, p.targets, cfg.temperature, positions);
      const logRatio = tf.mul(tf.sub(picked, oldLogp), mask); // [B, T]
      const ratio =
        cfg.ratio === "step"
          ? (tf.mul(tf.exp(tf.reshape(tf.mul(tf.sum(logRatio, 1), invLength), [p.B, 1])), mask) as tf.Tensor2D) // w_t broadcast [B, T]
          : (tf.mul(tf.exp(logRatio), mask) as tf.Tensor2D); // r_{t,i} [B, T]
      const unclipped = tf.mul(ratio, adv);
      const clipped = tf.mul(tf.clipByValue(ratio, 1 - cfg.clip, 1 + cfg.clip), adv);
      const pgPerToken = tf.mul(tf.neg(tf.minimum(unclipped, clipped)), rhoT) as tf.Tensor2D;
      const policyLoss = seqMeanTokenMean(pgPerToken, mask, invLength, norm.steps);

      let vErr = tf.square(tf.sub(values, vTarget));
      if (cfg.valueClip !== undefined) {
        const vClipped = tf.add(vOld, tf.clipByValue(tf.sub(values, vOld), -cfg.valueClip, cfg.valueClip));
        vErr = tf.maximum(vErr, tf.square(tf.sub(vClipped, vTarget)));
      }
      const valueLoss = tf.div(tf.mul(0.5, tf.sum(tf.mul(vErr, vMask))), nValue) as tf.Scalar;

      const entropy = seqMeanTokenMean(entropyPerPos, mask, invLength, norm.steps);
      // k3 estimator of KL(π_θ ‖ π_ref): exp(d) − d − 1 with d = log π_ref − log π_θ (low variance, ≥ 0).
      const d = tf.mul(tf.sub(refLogp, picked), mask);
      const kl = seqMeanTokenMean(tf.sub(tf.sub(tf.exp(d), d), 1) as tf.Tensor2D, mask, invLength, norm.steps);

      let loss = tf.add(policyLoss, tf.mul(cfg.valueCoef, valueLoss));
      if (cfg.entropyCoef > 0) loss = tf.sub(loss, tf.mul(cfg.entropyCoef, entropy));
      if (cfg.klCoef > 0) loss = tf.add(loss, tf.mul(cfg.klCoef, kl));

      const clippedFrac = tf.div(tf.sum(tf.mul(tf.cast(tf.greater(tf.abs(tf.sub(ratio, 1)), cfg.clip), "float32"), mask)), nTokens);
      const approxKl = tf.div(tf.sum(tf.mul(tf.mul(-1, logRatio), mask)), nTokens);
      stats = {
        policyLoss: tf.keep(policyLoss),
        valueLoss: tf.keep(valueLoss),
        entropy: tf.keep(entropy),
        kl: tf.keep(kl),
        clipFraction: tf.keep(clippedFrac as tf.Scalar),
        approxKl: tf.keep(approxKl as tf.Scalar),
      };
      return loss as tf.Scalar;
    }, model.variables);
    const byName: Record<string, tf.Tensor> = {};
    const varNames = new Map(model.variables.map((v, i) => [v.name, names[i]]));
    for (const [vname, g] of Object.entries(grads)) byName[varNames.get(vname)!] = tf.keep(g);
    const out: LossStats = {
      loss: value.dataSync()[0],
      policyLoss: stats.policyLoss.dataSync()[0],
      valueLoss: stats.valueLoss.dataSync()[0],
      entropy: stats.entropy.dataSync()[0],
      kl: stats.kl.dataSync()[0],
      clipFraction: stats.clipFraction.dataSync()[0],
      approxKl: stats.approxKl.dataSync()[0],
    };
    for (const s of Object.values(stats)) s.dispose();
    return { grads: byName, stats: out };
  });
}
