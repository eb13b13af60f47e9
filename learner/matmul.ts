// The model's matrix product, a·b, with a gradient made of plain (untransposed) products.
//
// tfjs differentiates a·b into dy·bᵀ and aᵀ·dy, passing the transposes as matMul's transposeA/transposeB
// flags. The wasm backend runs a 2-D product with either flag on a plain loop instead of XNNPACK's
// kernel, which made the backward pass ~90 % of a training step. `npm run bench -- training-step`
// measures value + both gradients of each of the model's 2-D products 3–6× faster this way (the batched
// attention products take the plain loop either way). An explicit transpose costs the native backends
// (tfjs-node, tfjs-node-gpu) little.
import { tf } from "./backend.ts";

/** Swaps the last two axes: [..., m, n] → [..., n, m]. */
function transposeLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(t, perm);
}

type Product = (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;

/** `forward` with the gradient `backward(dy, a, b) → [da, db]` instead of tfjs's own. */
function withGradient(forward: Product, backward: (dy: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => tf.Tensor[]): Product {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [a, b, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([a, b]);
    return { value: forward(a, b), gradFunc: (dy, [sa, sb]) => backward(dy as tf.Tensor, sa, sb) };
  });
  return (a, b) => f(a, b);
}

/**
 * a·b for a [..., m, k] and b [..., k, n] with the same leading (batch) shape → [..., m, n].
 * Gradients: da = dy·bᵀ, db = aᵀ·dy, each as an explicit transpose followed by a plain product.
 */
export const matMul = withGradient(
  (a, b) => tf.matMul(a, b),
  (dy, a, b) => [tf.matMul(dy, transposeLast(b)), tf.matMul(transposeLast(a), dy)],
);

/**
 * a·bᵀ for a [..., m, k] and b [..., n, k] → [..., m, n] (attention scores q·kᵀ). The forward product keeps
 * tfjs's transposeB flag: decoding runs it once per generated token, where an explicit transpose of the
 * growing key cache would cost more than the flag. Gradients: da = dy·b, db = dyᵀ·a, both plain products.
 */
export const matMulTransposed = withGradient(
  (a, b) => tf.matMul(a, b, false, true),
  (dy, a, b) => [tf.matMul(dy, b), tf.matMul(transposeLast(dy), a)],
);
