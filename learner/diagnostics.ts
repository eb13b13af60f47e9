// What a PPO user reads after every update, beyond the losses: how well the critic predicts the
// returns it is trained on. Explained variance 1 − Var(G − V) / Var(G): 1 is a perfect critic, 0 is no
// better than predicting the batch mean, negative is worse than that (CleanRL logs the same figure).

/** Explained variance of `predicted` for `target` (same length); null when there is nothing to explain. */
export function explainedVariance(predicted: ArrayLike<number>, target: ArrayLike<number>): number | null {
  const n = target.length;
  if (n !== predicted.length) throw new Error(`explainedVariance: ${predicted.length} predictions for ${n} targets`);
  if (n < 2) return null;
  let meanT = 0;
  let meanR = 0;
  for (let i = 0; i < n; i++) {
    meanT += target[i];
    meanR += target[i] - predicted[i];
  }
  meanT /= n;
  meanR /= n;
  let varT = 0;
  let varR = 0;
  for (let i = 0; i < n; i++) {
    varT += (target[i] - meanT) ** 2;
    varR += (target[i] - predicted[i] - meanR) ** 2;
  }
  // Every target equal (e.g. a batch with no success): the variance to explain is zero.
  if (varT <= 1e-12 * n) return null;
  return 1 - varR / varT;
}
