// One minibatch's gradient, computed over micro-batches of steps of similar length and summed.
//
// A packed minibatch is padded to its longest step, and attention's cost grows with the square of that
// length: textworld's steps run from ~40 to ~115 tokens, so a random minibatch is mostly padding where
// attention is concerned. Sorting the minibatch's steps by length and packing every MICRO_BATCH_STEPS of
// them on their own cuts the padding. Each micro-batch's loss is normalised by the whole minibatch's
// counts (MinibatchNorm), so their gradients add up to the minibatch's gradient: the optimiser still
// takes one step per minibatch on the same steps, and nothing changes beyond float rounding (unlike
// spec.algorithm.shuffle.bucketByLength, which changes which steps share a minibatch).
import { tf } from "../policy/backend.ts";
import { type PackedBatch, packSteps, type StepSample } from "./step-batch.ts";

/**
 * Steps per micro-batch. 8 was the fastest of 8, 16 and whole minibatches of 32 and 64 on the wasm backend
 * with the previous model; with its one-op layers (policy/layers.ts) a micro-batch costs far fewer kernels
 * and 16 is the fastest of 4, 8, 12, 16 and 32 (a 64-step PPO minibatch, CPU time: 559, 516, 443, 451, 526 ms).
 */
export const MICRO_BATCH_STEPS = 16;

/** The counts a minibatch's loss terms are averaged over, whichever micro-batch computes them. */
export interface MinibatchNorm {
  /** Steps: seq-mean-token-mean terms (policy loss, entropy, KL, cloning loss) average over them. */
  steps: number;
  /** Action tokens: the clip fraction and approximate KL average over them. */
  tokens: number;
  /** Positions with a value target: the value loss averages over them. */
  valuePositions: number;
}

export function minibatchNorm(samples: readonly StepSample[]): MinibatchNorm {
  return {
    steps: samples.length,
    tokens: samples.reduce((n, s) => n + s.actionIds.length, 0),
    valuePositions: samples.reduce((n, s) => n + s.valueOffsets.length, 0),
  };
}

/** The samples sorted by length (context + action; stable), cut into groups of `size`. */
export function lengthSortedMicroBatches(samples: readonly StepSample[], size = MICRO_BATCH_STEPS): StepSample[][] {
  const length = (s: StepSample) => s.contextIds.length + s.actionIds.length;
  const sorted = [...samples].sort((a, b) => length(a) - length(b));
  const out: StepSample[][] = [];
  for (let i = 0; i < sorted.length; i += size) out.push(sorted.slice(i, i + size));
  return out;
}

export type MinibatchGradients<S> = (p: PackedBatch, norm: MinibatchNorm) => { grads: Record<string, tf.Tensor>; stats: S };

/**
 * Gradients by parameter name and statistics of one minibatch, as the sums of `gradients` over its
 * length-sorted micro-batches (every statistic of S is a sum of per-micro-batch shares).
 */
export function minibatchGradients<S extends { [K in keyof S]: number }>(
  samples: readonly StepSample[],
  gradients: MinibatchGradients<S>,
  size = MICRO_BATCH_STEPS,
): { grads: Record<string, tf.Tensor>; stats: S } {
  if (samples.length === 0) throw new Error("minibatchGradients: empty minibatch");
  const norm = minibatchNorm(samples);
  let total: { grads: Record<string, tf.Tensor>; stats: S } | undefined;
  for (const part of lengthSortedMicroBatches(samples, size)) {
    const r = gradients(packSteps(part), norm);
    if (!total) {
      total = { grads: r.grads, stats: { ...r.stats } };
      continue;
    }
    for (const [name, g] of Object.entries(r.grads)) {
      const sum = tf.add(total.grads[name], g);
      tf.dispose([total.grads[name], g]);
      total.grads[name] = sum;
    }
    for (const key of Object.keys(r.stats) as (keyof S)[]) (total.stats[key] as number) += r.stats[key];
  }
  return total!;
}
