import assert from "node:assert/strict";
import { before, test } from "node:test";
import { selectBackend, tf } from "../../policy/backend.ts";
import { channelProduct, depthwiseBatchMatMul, IMAGE_ITEM_FLOATS, imageBatch, matMul, matMulTransposed, setBatchedProductMode } from "../../policy/matmul.ts";

before(async () => {
  await selectBackend("wasm", () => {});
});

function assertClose(got: tf.Tensor, want: tf.Tensor, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const g = got.dataSync();
  const w = want.dataSync();
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(g[i] - w[i]) < 1e-4, `${what}[${i}]: ${g[i]} vs ${w[i]}`);
}

// A loss that weighs every output element differently, so a transposed or misplaced gradient shows.
function weightedSum(y: tf.Tensor): tf.Scalar {
  return tf.sum(tf.mul(y, tf.reshape(tf.range(1, y.size + 1), y.shape)));
}

for (const [name, aShape, bShape] of [
  ["2-D", [5, 3], [3, 4]],
  ["batched 4-D", [2, 3, 5, 4], [2, 3, 4, 6]],
] as const) {
  test(`matMul equals tf.matMul in value and in both gradients (${name})`, () => {
    const a = tf.randomNormal([...aShape], 0, 1, "float32", 1);
    const b = tf.randomNormal([...bShape], 0, 1, "float32", 2);
    assertClose(matMul(a, b), tf.matMul(a, b), "value");
    const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => weightedSum(matMul(x, y)))([a, b]);
    const [wa, wb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => weightedSum(tf.matMul(x, y)))([a, b]);
    assertClose(ga, wa, "da");
    assertClose(gb, wb, "db");
  });
}

test("matMulTransposed equals tf.matMul(a, b, false, true) in value and in both gradients", () => {
  const a = tf.randomNormal([2, 3, 5, 4], 0, 1, "float32", 3); // q: [B, H, T, dh]
  const b = tf.randomNormal([2, 3, 7, 4], 0, 1, "float32", 4); // k: [B, H, Tk, dh]
  assertClose(matMulTransposed(a, b), tf.matMul(a, b, false, true), "value");
  const [ga, gb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => weightedSum(matMulTransposed(x, y)))([a, b]);
  const [wa, wb] = tf.grads((x: tf.Tensor, y: tf.Tensor) => weightedSum(tf.matMul(x, y, false, true)))([a, b]);
  assertClose(ga, wa, "da");
  assertClose(gb, wb, "db");
});

test("matMul and matMulTransposed leave no tensors behind outside a gradient tape", () => {
  const a = tf.randomNormal([4, 3]);
  const b = tf.randomNormal([3, 2]);
  const before = tf.memory().numTensors;
  tf.tidy(() => {
    matMul(a, b);
    matMulTransposed(a, tf.transpose(b));
  });
  assert.equal(tf.memory().numTensors, before);
});

test("a batched product as one depthwise convolution equals tf.matMul (attention's shapes, odd sizes)", () => {
  for (const [N, m, k, n] of [
    [8, 13, 4, 13],
    [8, 13, 13, 4],
    [3, 1, 5, 7],
  ]) {
    const a = tf.randomNormal([N, m, k], 0, 1, "float32", 5) as tf.Tensor3D;
    const b = tf.randomNormal([N, k, n], 0, 1, "float32", 6) as tf.Tensor3D;
    assertClose(depthwiseBatchMatMul(a, b), tf.matMul(a, b), `[${N},${m},${k}]·[${N},${k},${n}]`);
  }
  assert.throws(() => depthwiseBatchMatMul(tf.zeros([2, 3, 4]) as tf.Tensor3D, tf.zeros([2, 5, 4]) as tf.Tensor3D), /do not match/);
});

test("a channel product cut into a batch of images equals tf.matMul (images past IMAGE_ITEM_FLOATS, m with and without divisors)", () => {
  for (const [m, k, N, n] of [
    [50, 50, 256, 16], // the quickstart's mix: 5 items of 10 rows
    [53, 40, 128, 16], // m prime: no items of 4 rows or more, one item
    [96, 40, 128, 16], // 2 items of 48 rows
    [78, 16, 100, 78], // under the threshold: one item
  ]) {
    const image = tf.randomNormal([m, k, N], 0, 1, "float32", 21) as tf.Tensor3D;
    const filter = tf.randomNormal([k, N, n], 0, 1, "float32", 22) as tf.Tensor3D;
    const items = imageBatch(m, k * N);
    assert.ok(m % items === 0 && ((m / items) * k * N <= IMAGE_ITEM_FLOATS || items === 1), `[${m},${k},${N}]: ${items} items`);
    const previous = setBatchedProductMode("depthwise");
    try {
      const got = channelProduct(image, filter);
      setBatchedProductMode("matmul");
      assertClose(got, channelProduct(image, filter), `[${m},${k},${N}]·[${k},${N},${n}] in ${items} items`);
    } finally {
      setBatchedProductMode(previous);
    }
    tf.dispose([image, filter]);
  }
  assert.equal(imageBatch(50, 50 * 256), 5);
  assert.equal(imageBatch(53, 40 * 128), 1);
  assert.equal(imageBatch(96, 40 * 128), 2);
  assert.equal(imageBatch(94, 94 * 68), 1);
  assert.equal(imageBatch(78, 16 * 100), 1);
});

test("the two batched-product modes give the same values and gradients; the decoding shape (one query row) keeps the flag", () => {
  const q = tf.randomNormal([2, 3, 6, 4], 0, 1, "float32", 7);
  const k = tf.randomNormal([2, 3, 6, 4], 0, 1, "float32", 8);
  const v = tf.randomNormal([2, 3, 6, 4], 0, 1, "float32", 9);
  const attention = (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => weightedSum(matMul(tf.softmax(matMulTransposed(x, y)), z));
  const previous = setBatchedProductMode("matmul");
  try {
    const want = tf.grads(attention)([q, k, v]);
    setBatchedProductMode("depthwise");
    const got = tf.grads(attention)([q, k, v]);
    for (const [i, g] of got.entries()) assertClose(g, want[i], `gradient ${i}`);
    const q1 = tf.slice(q, [0, 0, 5, 0], [2, 3, 1, 4]);
    assertClose(matMulTransposed(q1, k), tf.matMul(q1, k, false, true), "one query row");
  } finally {
    setBatchedProductMode(previous);
  }
});
