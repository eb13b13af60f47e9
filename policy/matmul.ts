// The model's matrix products, a·b and a·bᵀ, with gradients made of plain (untransposed) products, and
// batched products (attention) computed as one depthwise convolution on the wasm backend.
//
// 1. tfjs differentiates a·b into dy·bᵀ and aᵀ·dy, passing the transposes as matMul's transposeA/transposeB
//    flags. The wasm backend runs a 2-D product with either flag on a plain loop instead of XNNPACK's
//    kernel, which made the backward pass ~90 % of a training step. `npm run bench -- training-step`
//    measures value + both gradients of each of the model's 2-D products 3–6× faster this way. An
//    explicit transpose costs the native backends (tfjs-node, tfjs-node-gpu) little.
// 2. The wasm backend runs every *batched* product (batch > 1: attention's [B·H, T, dh] operands) on a
//    plain loop too, at ~1 GFLOP/s against ~15–30 for XNNPACK's 2-D kernel. A batched product is exactly
//    a depthwise convolution: with a [N, m, k] laid out as an image [1, m, k, N] (height m, width k, N
//    channels) and b [N, k, n] as a filter [1, k, N, n] (width k, channel multiplier n), a valid
//    convolution gives out[i, 0, c·n + j] = Σ_κ a[c, i, κ] · b[c, κ, j], and tfjs-wasm runs depthwise
//    convolutions through XNNPACK. Same sums, other summation order (float rounding). The native
//    backends keep tf.matMul, whose batched kernels are fast already.
import { tf } from "./backend.ts";

/** How batched products are computed: "auto" picks depthwise on wasm; the others force one (tests, bench). */
export type BatchedProductMode = "auto" | "depthwise" | "matmul";
let batchedMode: BatchedProductMode = "auto";

/** Selects how batched products run; returns the previous mode (the bench compares both in one process). */
export function setBatchedProductMode(mode: BatchedProductMode): BatchedProductMode {
  const previous = batchedMode;
  batchedMode = mode;
  return previous;
}

function useDepthwise(): boolean {
  return batchedMode === "depthwise" || (batchedMode === "auto" && tf.getBackend() === "wasm");
}

/** Swaps the last two axes: [..., m, n] → [..., n, m]. */
function transposeLast(t: tf.Tensor): tf.Tensor {
  const perm = t.shape.map((_, i) => i);
  const r = perm.length;
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return tf.transpose(t, perm);
}

/** a [N, m, k] · b [N, k, n] → [N, m, n] as one depthwise convolution (see 2. above). */
export function depthwiseBatchMatMul(a: tf.Tensor3D, b: tf.Tensor3D): tf.Tensor3D {
  const [N, m, k] = a.shape;
  const n = b.shape[2];
  if (b.shape[0] !== N || b.shape[1] !== k) throw new Error(`batched product: [${a.shape}] · [${b.shape}] do not match`);
  const image = tf.reshape(tf.transpose(a, [1, 2, 0]), [1, m, k, N]) as tf.Tensor4D; // [1, m, k, N]
  const filter = tf.reshape(tf.transpose(b, [1, 0, 2]), [1, k, N, n]) as tf.Tensor4D; // [1, k, N, n]
  const out = tf.depthwiseConv2d(image, filter, 1, "valid"); // [1, m, 1, N·n]
  return tf.transpose(tf.reshape(out, [m, N, n]), [1, 0, 2]) as tf.Tensor3D; // [N, m, n]
}

/**
 * The batched product of channel-last operands: image [m, k, N] and filter [k, N, n] → [m, N, n] with
 * out[i, c, j] = Σ_κ image[i, κ, c] · filter[κ, c, j], for each of N channels. On wasm this is exactly one
 * depthwise convolution with no transposes at all (see 2. above); elsewhere tf.matMul on [N, m, k] · [N, k, n]
 * between transposes. Attention (layers.ts) is laid out so that its products take this form.
 */
export function channelProduct(image: tf.Tensor3D, filter: tf.Tensor3D): tf.Tensor3D {
  const [m, k, N] = image.shape;
  const n = filter.shape[2];
  if (filter.shape[0] !== k || filter.shape[1] !== N) throw new Error(`channel product: [${image.shape}] · [${filter.shape}] do not match`);
  if (!useDepthwise()) return tf.transpose(tf.matMul(tf.transpose(image, [2, 0, 1]), tf.transpose(filter, [1, 0, 2])), [1, 0, 2]) as tf.Tensor3D;
  const items = imageBatch(m, k * N);
  const out = tf.depthwiseConv2d(tf.reshape(image, [items, m / items, k, N]) as tf.Tensor4D, tf.reshape(filter, [1, k, N, n]) as tf.Tensor4D, 1, "valid"); // [items, m / items, 1, N·n]
  return tf.reshape(out, [m, N, n]) as tf.Tensor3D;
}

/** Floats of one image of a channel product's convolution beyond which it pays to cut the image into a batch. */
export const IMAGE_ITEM_FLOATS = 1 << 18;

/**
 * The fewest rows of an image batch item: items of two rows ran slower than the whole image, and a minimum of
 * 8 rows cost the quickstart's last layer (Q ≈ 25 query slots: 5 items of 5 rows) ~5 % of an update.
 */
const ITEM_MIN_ROWS = 4;

/**
 * How many batch items a channel product's image [m, k, N] is cut into along m (a reshape: the rows of
 * item i follow those of item i − 1), all sharing the one filter: the fewest that divide m into items of at
 * least ITEM_MIN_ROWS rows and at most IMAGE_ITEM_FLOATS floats; one when none does. XNNPACK's grouped
 * convolution reads the image one channel at a time, a float per cache line; an image of ~1 MB stays in
 * cache across the channels. Measured on attention's shapes: the quickstart's [50, 50, 256] images (the mix
 * and three of its gradients) 38 % faster as 5 items, the bench's [78, 78, 100] ones 13 % as 3, the
 * [50, 16, 256] scores unchanged (one item), [94, 94, 68] and [106, 106, 52] slower as 47 and 53 items of
 * two rows; the same sums either way.
 */
export function imageBatch(m: number, rowFloats: number): number {
  for (let items = 1; m / items >= ITEM_MIN_ROWS; items++) if (m % items === 0 && (m / items) * rowFloats <= IMAGE_ITEM_FLOATS) return items;
  return 1;
}

/** a [..., m, k] · b [..., k, n] with the same leading shape; batched operands go through `depthwiseBatchMatMul` where it pays. */
function product(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.rank <= 2 || !useDepthwise()) return tf.matMul(a, b);
  const lead = a.shape.slice(0, -2);
  if (lead.join("x") !== b.shape.slice(0, -2).join("x")) throw new Error(`batched product: leading shapes [${a.shape}] and [${b.shape}] differ`);
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.rank - 1];
  const N = lead.reduce((x, y) => x * y, 1);
  const out = depthwiseBatchMatMul(tf.reshape(a, [N, m, k]) as tf.Tensor3D, tf.reshape(b, [N, k, n]) as tf.Tensor3D);
  return tf.reshape(out, [...lead, m, n]);
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
  (a, b) => product(a, b),
  (dy, a, b) => [product(dy, transposeLast(b)), product(transposeLast(a), dy)],
);

/**
 * a·bᵀ for a [..., m, k] and b [..., n, k] → [..., m, n] (attention scores q·kᵀ). During decoding (one query
 * row, m = 1) the forward product keeps tfjs's transposeB flag: it runs once per generated token, where an
 * explicit transpose of the growing key cache would cost more than the flag. Gradients: da = dy·b,
 * db = dyᵀ·a, both plain products.
 */
export const matMulTransposed = withGradient(
  (a, b) => (a.shape[a.rank - 2] === 1 || a.rank <= 2 || !useDepthwise() ? tf.matMul(a, b, false, true) : product(a, transposeLast(b))),
  (dy, a, b) => [product(dy, b), product(transposeLast(dy), a)],
);
