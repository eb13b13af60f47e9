// The fast model (time-major rows, fused linear layers, hand-written gradients of layer norm and attention,
// attention as channel products) against the model as written before (test/support/reference-model.ts):
// the same logits, values and parameter gradients to float tolerance, with the wasm backend's depthwise
// products and with the tf.matMul path the native backends take.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { selectBackend, tf } from "../../policy/backend.ts";
import { attention, layerNorm, linear, targetLogProbs, targetLogProbsAndEntropy } from "../../policy/layers.ts";
import { type BatchedProductMode, setBatchedProductMode } from "../../policy/matmul.ts";
import { gatherRows, PolicyModel, readWindows } from "../../policy/model.ts";
import { referenceForward } from "../support/reference-model.ts";

const config = { vocabSize: 29, dModel: 24, layers: 2, heads: 3, contextLength: 16 };
let model: PolicyModel;

before(async () => {
  await selectBackend("wasm", () => {});
  model = new PolicyModel(config, 7);
  // Perturb every parameter so biases, gains and the value head all matter.
  tf.tidy(() => {
    let seed = 100;
    for (const v of model.params.values()) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.3, "float32", seed++)));
  });
});

after(() => model.dispose());

function assertClose(got: tf.Tensor, want: tf.Tensor, what: string, tol = 1e-4): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const g = got.dataSync();
  const w = want.dataSync();
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(g[i] - w[i]) <= tol * (1 + Math.abs(w[i])), `${what}[${i}]: ${g[i]} vs ${w[i]}`);
}

/** A loss weighing every element differently, so a transposed or misplaced gradient shows. */
function weighted(xs: tf.Tensor[]): tf.Scalar {
  return tf.addN(xs.map((x, i) => tf.sum(tf.mul(x, tf.reshape(tf.sin(tf.range(1, x.size + 1).mul(0.37 * (i + 1))), x.shape))))) as tf.Scalar;
}

const ids = () =>
  tf.tensor2d(
    Int32Array.from({ length: 3 * 11 }, (_, i) => 1 + ((i * 7) % 28)),
    [3, 11],
    "int32",
  );

for (const mode of ["auto", "matmul"] as BatchedProductMode[]) {
  test(`the model's logits, values and every parameter's gradient equal the previous implementation's (${mode === "auto" ? "depthwise products" : "tf.matMul products"})`, () => {
    const previous = setBatchedProductMode(mode);
    try {
      tf.tidy(() => {
        const x = ids();
        const got = model.forward(x);
        const want = referenceForward(model, x);
        assertClose(got.logits, want.logits, "logits");
        assertClose(got.values, want.values, "values");
        const g = tf.variableGrads(() => {
          const o = model.forward(x);
          return weighted([o.logits, o.values]);
        }, model.variables).grads;
        const w = tf.variableGrads(() => {
          const o = referenceForward(model, x);
          return weighted([o.logits, o.values]);
        }, model.variables).grads;
        for (const [name, wg] of Object.entries(w)) assertClose(g[name], wg, `gradient of ${name}`, 2e-4);
      });
    } finally {
      setBatchedProductMode(previous);
    }
  });
}

test("features equal the reference trunk (batch-major [B, T, D]) and headsAt reads the same positions", () => {
  tf.tidy(() => {
    const x = ids();
    const full = model.forward(x);
    const positions = Int32Array.of(0, 4, 10, 11, 20, 32);
    const { logits, values } = model.headsAt(x, positions);
    const flatLogits = tf.reshape(full.logits, [33, config.vocabSize]);
    assertClose(logits, tf.gather(flatLogits, tf.tensor1d(positions, "int32")), "headsAt logits");
    assertClose(values, tf.gather(tf.reshape(full.values, [33]), tf.tensor1d(positions, "int32")), "headsAt values");
    assert.deepEqual(model.features(x).shape, [3, 11, config.dModel]);
  });
});

// Widths: narrower than the output (xᵀ·g), wider ((gᵀ·x)ᵀ, as the MLP's output layer), and a single output (the value head).
for (const [K, N] of [
  [5, 7],
  [12, 5],
  [6, 1],
]) {
  test(`linear (fused bias and ReLU) equals x·W + b through relu, in value and gradients: ${K} → ${N}`, () => {
    tf.tidy(() => {
      const x = tf.randomNormal([9, K], 0, 1, "float32", 1);
      const w = tf.randomNormal([K, N], 0, 1, "float32", 2);
      const b = tf.randomNormal([N], 0, 1, "float32", 3);
      for (const act of ["linear", "relu"] as const) {
        const plain = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => {
          const y = tf.add(tf.matMul(xi, wi), bi);
          return act === "relu" ? tf.relu(y) : y;
        };
        assertClose(linear(x as tf.Tensor2D, w, b, act), plain(x, w, b), `${act} value`);
        const got = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => weighted([linear(xi as tf.Tensor2D, wi, bi, act)]))([x, w, b]);
        const want = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => weighted([plain(xi, wi, bi)]))([x, w, b]);
        got.forEach((g, i) => {
          assertClose(g, want[i], `${act} gradient ${i}`);
        });
      }
    });
  });
}

test("layerNorm's closed-form gradient equals autodiff's", () => {
  tf.tidy(() => {
    const x = tf.randomNormal([6, 8], 1, 2, "float32", 4);
    const g = tf.randomNormal([8], 1, 0.5, "float32", 5);
    const b = tf.randomNormal([8], 0, 1, "float32", 6);
    const plain = (xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => {
      const { mean, variance } = tf.moments(xi, -1, true);
      return tf.add(tf.mul(tf.div(tf.sub(xi, mean), tf.sqrt(tf.add(variance, 1e-5))), gi), bi);
    };
    assertClose(layerNorm(x as tf.Tensor2D, g, b), plain(x, g, b), "value");
    const got = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => weighted([layerNorm(xi as tf.Tensor2D, gi, bi)]))([x, g, b]);
    const want = tf.grads((xi: tf.Tensor, gi: tf.Tensor, bi: tf.Tensor) => weighted([plain(xi, gi, bi)]))([x, g, b]);
    got.forEach((gr, i) => {
      assertClose(gr, want[i], `gradient ${i}`);
    });
  });
});

test("attention on time-major rows (its projection included) equals per-head softmax(q·kᵀ/√dh + mask)·v, in value and gradients", () => {
  for (const mode of ["auto", "matmul"] as BatchedProductMode[]) {
    const previous = setBatchedProductMode(mode);
    tf.tidy(() => {
      const [T, B, H, dh] = [5, 2, 3, 4];
      const d = H * dh;
      const x = tf.randomNormal([T * B, d], 0, 1, "float32", 8) as tf.Tensor2D;
      const w = tf.randomNormal([d, 3 * d], 0, 0.5, "float32", 9);
      const b = tf.randomNormal([3 * d], 0, 0.5, "float32", 10);
      const m = new Float32Array(T * T);
      for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
      const causal = tf.tensor2d(m, [T, T]);
      const mask = tf.reshape(causal, [T, 1, 1, T]);
      const plain = (xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => {
        // [T·B, 3D] → q, k, v [B, H, T, dh]
        const qkv = tf.add(tf.matMul(xi, wi), bi);
        const [q, k, v] = tf.split(tf.reshape(qkv, [T, B, 3 * d]), 3, 2).map((t) => tf.transpose(tf.reshape(t, [T, B, H, dh]), [1, 2, 0, 3]));
        const att = tf.matMul(tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), causal)), v); // [B, H, T, dh]
        return tf.reshape(tf.transpose(att, [2, 0, 1, 3]), [T * B, d]);
      };
      const shape = { T, B, H, dh };
      assertClose(attention(x, w, b, mask, shape), plain(x, w, b), `value (${mode})`);
      const got = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => weighted([attention(xi as tf.Tensor2D, wi, bi, mask, shape)]))([x, w, b]);
      const want = tf.grads((xi: tf.Tensor, wi: tf.Tensor, bi: tf.Tensor) => weighted([plain(xi, wi, bi)]))([x, w, b]);
      got.forEach((g, i) => {
        assertClose(g, want[i], `gradient ${i} (${mode})`);
      });
    });
    setBatchedProductMode(previous);
  }
});

// The last layer at the read positions only (PolicyModel.featuresAt) against the full trunk: ids [3, 11],
// positions flat b·T + t. Row 0 reads a window of 4, row 1 one position, row 2 nothing; then repeats,
// gaps, the first and the last column; then windows spanning the whole sequence (the full-trunk path).
const POSITION_CASES: [string, Int32Array][] = [
  ["windows of 4, 1 and 0 positions", Int32Array.of(3, 4, 5, 6, 11 + 7)],
  ["repeats, gaps, first and last column", Int32Array.of(0, 0, 5, 11 + 2, 11 + 9, 11 + 9, 22 + 10, 22 + 4)],
  ["a window over the whole sequence", Int32Array.of(0, 10, 11 + 5, 22 + 1)],
];

for (const mode of ["auto", "matmul"] as BatchedProductMode[]) {
  for (const [what, positions] of POSITION_CASES) {
    test(`headsAt (the last layer at the read windows) equals the full forward pass in logits, values and gradients: ${what} (${mode === "auto" ? "depthwise" : "tf.matMul"} products)`, () => {
      const previous = setBatchedProductMode(mode);
      try {
        tf.tidy(() => {
          const x = ids();
          const idx = tf.tensor1d(positions, "int32");
          const full = () => {
            const o = model.forward(x);
            return [
              gatherRows(tf.reshape(o.logits, [33, config.vocabSize]), idx),
              tf.reshape(gatherRows(tf.reshape(o.values, [33, 1]), idx), [positions.length]),
            ];
          };
          const at = () => {
            const o = model.headsAt(x, positions);
            return [o.logits, o.values];
          };
          const [wl, wv] = full();
          const [gl, gv] = at();
          assertClose(gl, wl, "logits");
          assertClose(gv, wv, "values");
          const want = tf.variableGrads(() => weighted(full()), model.variables).grads;
          const got = tf.variableGrads(() => weighted(at()), model.variables).grads;
          for (const [name, wg] of Object.entries(want)) assertClose(got[name], wg, `gradient of ${name}`, 2e-4);
          const f = model.featuresAt(x, positions);
          assertClose(f, gatherRows(tf.reshape(model.features(x), [33, config.dModel]), idx), "featuresAt");
        });
      } finally {
        setBatchedProductMode(previous);
      }
    });
  }
}

test("readWindows: one window per sequence from its first to its last read position, slots clamped, each slot's causal row", () => {
  const T = 6;
  const w = readWindows(Int32Array.of(2, 3, 4, 6 + 5, 6 + 5), 3, T); // row 0: 2..4, row 1: 5, row 2: nothing
  assert.equal(w.Q, 3);
  // slot j of sequence b at j·B + b; trunk rows t·B + b
  assert.deepEqual([...w.slotRows], [2 * 3 + 0, 5 * 3 + 1, 0 * 3 + 2, 3 * 3 + 0, 5 * 3 + 1, 1 * 3 + 2, 4 * 3 + 0, 5 * 3 + 1, 2 * 3 + 2]);
  assert.deepEqual([...w.slotOf], [0, 3, 6, 1, 1]);
  const row = (j: number, b: number) => [...w.mask.subarray((j * 3 + b) * T, (j * 3 + b + 1) * T)].map((m) => (m === 0 ? 1 : 0));
  assert.deepEqual(row(0, 0), [1, 1, 1, 0, 0, 0]);
  assert.deepEqual(row(2, 0), [1, 1, 1, 1, 1, 0]);
  assert.deepEqual(row(1, 1), [1, 1, 1, 1, 1, 1]); // clamped to the last column
  assert.equal(readWindows(new Int32Array(0), 2, T).Q, 0);
});

test("targetLogProbsAndEntropy equals log-softmax picked by a one-hot and −Σ p·log p, in value and gradient, at temperatures 1 and 0.5", () => {
  tf.tidy(() => {
    const [P, V] = [7, 11];
    // One row far spread (probabilities that underflow to 0) and one constant row.
    const base = tf.randomNormal([P, V], 0, 2, "float32", 12).arraySync() as number[][];
    base[3] = base[3].map((x, j) => x * 40 + j);
    base[5] = base[5].map(() => 1.5);
    const logits = tf.tensor2d(base);
    const targets = Int32Array.of(0, 10, 3, 3, 7, 1, 10);
    for (const temperature of [1, 0.5]) {
      const plain = (l: tf.Tensor) => {
        const logp = tf.logSoftmax(tf.div(l, temperature));
        const picked = tf.sum(tf.mul(logp, tf.oneHot(tf.tensor1d(targets, "int32"), V).toFloat()), -1);
        const entropy = tf.neg(tf.sum(tf.mul(tf.exp(logp), logp), -1));
        return tf.stack([picked, entropy]);
      };
      assertClose(targetLogProbsAndEntropy(logits, targets, temperature), plain(logits), `value (τ = ${temperature})`);
      const got = tf.grad((l: tf.Tensor) => weighted([targetLogProbsAndEntropy(l as tf.Tensor2D, targets, temperature)]))(logits);
      const want = tf.grad((l: tf.Tensor) => weighted([plain(l)]))(logits);
      assertClose(got, want, `gradient (τ = ${temperature})`);
    }
  });
});

test("targetLogProbs equals log-softmax picked by a one-hot, in value and gradient, at temperatures 1 and 0.5", () => {
  tf.tidy(() => {
    const [P, V] = [7, 11];
    // One row far spread (probabilities that underflow to 0) and one constant row.
    const base = tf.randomNormal([P, V], 0, 2, "float32", 13).arraySync() as number[][];
    base[3] = base[3].map((x, j) => x * 40 + j);
    base[5] = base[5].map(() => 1.5);
    const logits = tf.tensor2d(base);
    const targets = Int32Array.of(0, 10, 3, 3, 7, 1, 10);
    for (const temperature of [1, 0.5]) {
      const plain = (l: tf.Tensor) => tf.sum(tf.mul(tf.logSoftmax(tf.div(l, temperature)), tf.oneHot(tf.tensor1d(targets, "int32"), V).toFloat()), -1);
      assertClose(targetLogProbs(logits, targets, temperature), plain(logits), `value (τ = ${temperature})`);
      const got = tf.grad((l: tf.Tensor) => weighted([targetLogProbs(l as tf.Tensor2D, targets, temperature)]))(logits);
      const want = tf.grad((l: tf.Tensor) => weighted([plain(l)]))(logits);
      assertClose(got, want, `gradient (τ = ${temperature})`);
    }
  });
});
