// Step-level shuffling (docs/algorithm.md): once advantages are fixed, the training unit is the step sample.
// Minibatches draw step samples uniformly without replacement across trajectories and workers from a
// seeded RNG, so the steps of one trajectory are decorrelated and a run replays exactly.
import type { Rng } from "../core/rng.ts";

/** How many minibatches' worth of samples are sorted together when bucketing by length. */
export const BUCKET_SPAN_MINIBATCHES = 4;

export interface MinibatchOptions {
  /** Token length of each sample (context + action), [n]; required with bucketByLength. */
  lengths?: ArrayLike<number>;
  /** Sort by length within chunks of a few minibatches to cut padding. */
  bucketByLength?: boolean;
  /** Chunk size for bucketing, in minibatches (default BUCKET_SPAN_MINIBATCHES). */
  bucketSpan?: number;
}

/**
 * A seeded permutation of 0..n−1 cut into minibatches of `minibatchSize` (the last may be smaller).
 * With bucketByLength: after the permutation, each chunk of `bucketSpan` minibatches is sorted by length
 * and cut, and the order of all minibatches is shuffled again. Membership of a chunk is still random
 * (so is the tie order: the sort is stable), but each minibatch holds similar lengths; the final shuffle
 * keeps short and long minibatches from arriving in a fixed pattern.
 */
export function minibatchIndices(n: number, minibatchSize: number, rng: Rng, opts: MinibatchOptions = {}): number[][] {
  checkSizes(n, minibatchSize);
  const order = rng.shuffle(range(n)); // [n], uniform permutation
  if (!opts.bucketByLength) return chunk(order, minibatchSize);

  const lengths = opts.lengths;
  if (!lengths || lengths.length !== n) {
    throw new Error(`minibatchIndices: bucketByLength needs lengths for all ${n} samples (got ${lengths?.length ?? "none"})`);
  }
  const span = opts.bucketSpan ?? BUCKET_SPAN_MINIBATCHES;
  if (!Number.isInteger(span) || span < 1) throw new Error(`minibatchIndices: bucketSpan must be a positive integer (got ${span})`);
  // Chunks are whole multiples of the minibatch size, so only the very last minibatch can be short.
  const minibatches: number[][] = [];
  for (const bucket of chunk(order, span * minibatchSize)) {
    bucket.sort((a, b) => lengths[a] - lengths[b]);
    minibatches.push(...chunk(bucket, minibatchSize));
  }
  return rng.shuffle(minibatches);
}

/** The `shuffle: false` path: 0..n−1 in order, cut into minibatches (the last may be smaller). */
export function sequentialIndices(n: number, minibatchSize: number): number[][] {
  checkSizes(n, minibatchSize);
  return chunk(range(n), minibatchSize);
}

/** Padding a packed minibatch pays: Σ (max length − length) over its samples. */
export function paddingTokens(minibatches: readonly number[][], lengths: ArrayLike<number>): number {
  let pad = 0;
  for (const mb of minibatches) {
    let max = 0;
    for (const i of mb) max = Math.max(max, lengths[i]);
    for (const i of mb) pad += max - lengths[i];
  }
  return pad;
}

function checkSizes(n: number, minibatchSize: number): void {
  if (!Number.isInteger(n) || n < 0) throw new Error(`minibatch indices: n must be a non-negative integer (got ${n})`);
  if (!Number.isInteger(minibatchSize) || minibatchSize < 1)
    throw new Error(`minibatch indices: minibatchSize must be a positive integer (got ${minibatchSize})`);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function chunk<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}
