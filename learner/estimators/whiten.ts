// Batch whitening of advantages, applied by the learner according to the estimator's `whitenOver`:
// over steps (StepPO: each step counts once, however many tokens it has) or over tokens (token PPO).

/** Mean and population standard deviation over all elements of a ragged batch, in float64. */
export function raggedMoments(values: readonly ArrayLike<number>[]): { mean: number; std: number; count: number } {
  let count = 0;
  let sum = 0;
  for (const row of values) {
    for (let i = 0; i < row.length; i++) sum += row[i];
    count += row.length;
  }
  if (count === 0) return { mean: 0, std: 0, count };
  const mean = sum / count;
  let sq = 0;
  for (const row of values) {
    for (let i = 0; i < row.length; i++) sq += (row[i] - mean) * (row[i] - mean);
  }
  return { mean, std: Math.sqrt(sq / count), count };
}

/** (x − mean) / (std + ε) for every element, with statistics taken elsewhere (e.g. over steps). */
export function applyWhitening(values: readonly Float32Array[], moments: { mean: number; std: number }, eps = 1e-8): Float32Array[] {
  const scale = 1 / (moments.std + eps);
  return values.map((row) => Float32Array.from(row, (x) => (x - moments.mean) * scale));
}

/**
 * Whitens a ragged batch jointly: mean 0, std 1 over all elements together (not per row). ε keeps an
 * all-equal batch at 0 instead of NaN. Returns new arrays; the input is not modified.
 */
export function whiten(values: readonly Float32Array[], eps = 1e-8): Float32Array[] {
  return applyWhitening(values, raggedMoments(values), eps);
}
