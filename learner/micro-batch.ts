// One minibatch's gradient, computed over micro-batches of steps of similar length and summed.
//
// A packed minibatch is padded to its longest step, and attention's cost grows with the square of that
// length: textworld's steps run from ~40 to ~115 tokens, so a random minibatch is mostly padding where
// attention is concerned. Sorting the minibatch's steps by length and packing similar lengths together
// cuts the padding. Each micro-batch's loss is normalised by the whole minibatch's counts (MinibatchNorm),
// so their gradients add up to the minibatch's gradient: the optimiser still takes one step per minibatch
// on the same steps, and nothing changes beyond float rounding (unlike spec.algorithm.shuffle.bucketByLength,
// which changes which steps share a minibatch).
import { tf } from "../policy/backend.ts";
import { type PackedBatch, packSteps, type StepSample } from "./step-batch.ts";

/**
 * How much a micro-batch holds: length-sorted steps join it while steps × (longest length)² stays within
 * this. Every micro-batch costs a fixed ~800 kernel launches (~0.04 ms each on wasm) besides its
 * arithmetic, so short steps want many per micro-batch and long ones few (attention's padded work grows
 * with the square of the length). A fixed count of 16 steps was the fastest of 4–32 on the bench's
 * 55–115-token steps (B·T² ≈ 160 000 at T = 100), while the quickstart's 24–50-token steps ran fastest
 * as one micro-batch of 64 (B·T² ≈ 160 000 at T = 50): this budget gives both.
 */
export const MICRO_BATCH_BUDGET = 160_000;

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

/**
 * The samples sorted by length (context + action; stable), cut into runs whose steps × (longest length)²
 * stays within `budget` (at least one step each).
 */
export function lengthSortedMicroBatches(samples: readonly StepSample[], budget = MICRO_BATCH_BUDGET): StepSample[][] {
  const length = (s: StepSample) => s.contextIds.length + s.actionIds.length;
  const sorted = [...samples].sort((a, b) => length(a) - length(b));
  const out: StepSample[][] = [];
  let part: StepSample[] = [];
  for (const s of sorted) {
    // Sorted: s is the longest of the run it would join.
    if (part.length > 0 && (part.length + 1) * length(s) ** 2 > budget) {
      out.push(part);
      part = [];
    }
    part.push(s);
  }
  if (part.length > 0) out.push(part);
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
  budget = MICRO_BATCH_BUDGET,
): { grads: Record<string, tf.Tensor>; stats: S } {
  if (samples.length === 0) throw new Error("minibatchGradients: empty minibatch");
  const norm = minibatchNorm(samples);
  let total: { grads: Record<string, tf.Tensor>; stats: S } | undefined;
  for (const part of lengthSortedMicroBatches(samples, budget)) {
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
