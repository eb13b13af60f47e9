// The pieces of a Llama-family decoder layer, as tfjs ops differentiated by tfjs's autodiff (the products
// through matmul.ts, whose gradients are plain products on wasm). Weights are kept as Hugging Face stores
// them, nn.Linear's [out, in], so that loading and exporting copy tensors unchanged; a product transposes
// the weight first (one explicit transpose per weight and pass, cheap next to the product).
import { tf } from "../backend.ts";
import { matMul, matMulTransposed } from "../matmul.ts";

/** x·Wᵀ + b for x [R, in], w [out, in] (nn.Linear's layout), b [out] or none → [R, out]. */
export function linearHf(x: tf.Tensor2D, w: tf.Tensor, b?: tf.Tensor): tf.Tensor2D {
  const y = matMul(x, tf.transpose(w)) as tf.Tensor2D;
  return b ? (tf.add(y, b) as tf.Tensor2D) : y;
}

/** RMSNorm over the last axis: x / √(mean(x²) + ε) · w. x [R, D], w [D] → [R, D]. (No mean is subtracted, no bias.) */
export function rmsNorm(x: tf.Tensor2D, w: tf.Tensor, eps: number): tf.Tensor2D {
  const meanSquare = tf.mean(tf.square(x), -1, true); // [R, 1]
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(meanSquare, eps))), w) as tf.Tensor2D;
}

/** A linear projection of rows [R, in] → [R, out] (with whatever bias or adapter it has). */
export type Projection = (x: tf.Tensor2D) => tf.Tensor2D;

/** The SwiGLU MLP: down(silu(gate(x)) ⊙ up(x)). x [R, D] → [R, D]. */
export function swiGlu(x: tf.Tensor2D, gate: Projection, up: Projection, down: Projection): tf.Tensor2D {
  const g = gate(x); // [R, I]
  const silu = tf.mul(g, tf.sigmoid(g));
  return down(tf.mul(silu, up(x)) as tf.Tensor2D);
}

/**
 * The rotary tables in the layout transformers uses ("rotate_half": channel i and channel i + dh/2 form a
 * pair, rotated by angle position · θ^(−2i/dh)), for `positions` [rows · T] (row-major): cos and sin
 * [rows, 1, T, dh], each half repeated, broadcasting over the heads. Training passes one row 0 … T−1; a
 * decoder passes each row's own positions (its left padding does not count). Computed in float32 steps as
 * transformers does (inv_freq in float32, position · inv_freq rounded to float32), so that angles at long
 * positions agree with the original's, not just with exact maths.
 */
export function rotaryTables(positions: ArrayLike<number>, rows: number, T: number, headDim: number, theta: number): { cos: tf.Tensor4D; sin: tf.Tensor4D } {
  const half = headDim / 2;
  const invFreq = Float32Array.from({ length: half }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  const cos = new Float32Array(rows * T * headDim);
  const sin = new Float32Array(rows * T * headDim);
  for (let r = 0; r < rows * T; r++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround(positions[r] * invFreq[i]);
      cos[r * headDim + i] = cos[r * headDim + i + half] = Math.cos(angle);
      sin[r * headDim + i] = sin[r * headDim + i + half] = Math.sin(angle);
    }
  }
  return { cos: tf.tensor4d(cos, [rows, 1, T, headDim]), sin: tf.tensor4d(sin, [rows, 1, T, headDim]) };
}

/** x·cos + rotate_half(x)·sin, rotate_half(x) = [−x₂, x₁] over the head's halves. x [B, H, T, dh]; cos, sin [B or 1, 1, T, dh]. */
export function applyRotary(x: tf.Tensor4D, cos: tf.Tensor4D, sin: tf.Tensor4D): tf.Tensor4D {
  const [x1, x2] = tf.split(x, 2, 3);
  const rotated = tf.concat([tf.neg(x2), x1], 3);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
}

/** Rows [B·T, heads·dh] (batch-major) as heads [B, heads, T, dh]. */
export function toHeads(x: tf.Tensor2D, B: number, T: number, heads: number, headDim: number): tf.Tensor4D {
  return tf.transpose(tf.reshape(x, [B, T, heads, headDim]), [0, 2, 1, 3]) as tf.Tensor4D;
}

/** Heads [B, H, T, dh] back to rows [B·T, H·dh]. */
export function fromHeads(x: tf.Tensor4D): tf.Tensor2D {
  const [B, H, T, dh] = x.shape;
  return tf.reshape(tf.transpose(x, [0, 2, 1, 3]), [B * T, H * dh]) as tf.Tensor2D;
}

/**
 * Grouped-query attention: each of the `kvHeads` key/value heads serves heads/kvHeads consecutive query
 * heads (query head h reads kv head ⌊h / group⌋, transformers' repeat_kv). Rather than repeating k and v
 * group times, a kv head's group of queries is stacked along the query axis — q [B, H, T, dh] is already
 * [B, KVH, group·T, dh] in memory — so each product runs once per kv head (and tfjs has no gradient for
 * the rank-5 tile a repeat would need). q [B, H, T, dh] and k, v [B, KVH, Tk, dh], rotary embeddings
 * applied; mask is additive and broadcasts to [B, H, T, Tk]. → [B, H, T, dh]
 */
export function groupedAttention(q: tf.Tensor4D, k: tf.Tensor4D, v: tf.Tensor4D, mask: tf.Tensor): tf.Tensor4D {
  const [B, H, T, dh] = q.shape;
  const kvHeads = k.shape[1];
  const Tk = k.shape[2];
  const group = H / kvHeads;
  const stacked = tf.reshape(q, [B, kvHeads, group * T, dh]);
  const scores = tf.reshape(matMulTransposed(stacked, k), [B, H, T, Tk]); // query head h = kv head · group + g
  const weights = tf.softmax(tf.add(tf.mul(scores, 1 / Math.sqrt(dh)), mask)); // [B, H, T, Tk]
  const mixed = matMul(tf.reshape(weights, [B, kvHeads, group * T, Tk]), v); // [B, KVH, group·T, dh]
  return tf.reshape(mixed, [B, H, T, dh]) as tf.Tensor4D;
}
