// Critic warm-up: before the first policy update, the value head is fitted to the Monte-Carlo returns of
// the warmed-up policy's own episodes. Behaviour cloning trains no value head, so without this V ≡ 0 when
// RL starts and the first updates' step advantages are raw returns minus nothing but the batch mean
// (REINFORCE, whatever the estimator says). The head is linear on the trunk's features, so with the trunk
// frozen the best fit is a ridge regression, solved exactly: no learning rate, no epochs, and the policy
// (which shares the trunk) is left exactly as cloning made it. RL's value loss refines it from there.

/**
 * Ridge regression with an unpenalised bias: argmin_w,b Σ (x_i·w + b − y_i)² + ridge · N · |w|².
 * rows: N feature vectors of length D. Returns w [D] and b. Solved in float64 by Cholesky on the centred
 * normal equations (centring removes the bias from the system, so only w is penalised).
 */
export function fitRidge(rows: Float32Array[], y: ArrayLike<number>, ridge: number): { w: Float32Array; b: number } {
  const n = rows.length;
  if (n === 0) throw new Error("critic fit: no value positions to fit");
  if (y.length !== n) throw new Error(`critic fit: ${n} feature rows for ${y.length} targets`);
  const d = rows[0].length;
  const meanX = new Float64Array(d);
  let meanY = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) meanX[j] += rows[i][j] / n;
    meanY += y[i] / n;
  }
  const a = new Float64Array(d * d); // Σ (x − x̄)(x − x̄)ᵀ + ridge·N·I
  const rhs = new Float64Array(d); // Σ (x − x̄)(y − ȳ)
  const xc = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) xc[j] = rows[i][j] - meanX[j];
    const yc = y[i] - meanY;
    for (let j = 0; j < d; j++) {
      rhs[j] += xc[j] * yc;
      for (let k = 0; k <= j; k++) a[j * d + k] += xc[j] * xc[k];
    }
  }
  for (let j = 0; j < d; j++) a[j * d + j] += ridge * n + 1e-9;
  const w64 = choleskySolve(a, rhs, d);
  let b = meanY;
  for (let j = 0; j < d; j++) b -= w64[j] * meanX[j];
  return { w: Float32Array.from(w64), b };
}

/** Solves A·x = r for a symmetric positive-definite A given by its lower triangle (row-major d×d). */
function choleskySolve(a: Float64Array, r: Float64Array, d: number): Float64Array {
  const l = new Float64Array(d * d);
  for (let j = 0; j < d; j++) {
    let diag = a[j * d + j];
    for (let k = 0; k < j; k++) diag -= l[j * d + k] ** 2;
    if (!(diag > 0)) throw new Error("critic fit: normal equations are not positive definite");
    l[j * d + j] = Math.sqrt(diag);
    for (let i = j + 1; i < d; i++) {
      let v = a[i * d + j];
      for (let k = 0; k < j; k++) v -= l[i * d + k] * l[j * d + k];
      l[i * d + j] = v / l[j * d + j];
    }
  }
  const z = new Float64Array(d); // L·z = r
  for (let i = 0; i < d; i++) {
    let v = r[i];
    for (let k = 0; k < i; k++) v -= l[i * d + k] * z[k];
    z[i] = v / l[i * d + i];
  }
  const x = new Float64Array(d); // Lᵀ·x = z
  for (let i = d - 1; i >= 0; i--) {
    let v = z[i];
    for (let k = i + 1; k < d; k++) v -= l[k * d + i] * x[k];
    x[i] = v / l[i * d + i];
  }
  return x;
}
