// The transformer's layers as single differentiable ops with hand-written gradients: fewer kernels per
// layer, fewer tensors saved for the backward pass, and no transposed products.
//
// On the wasm backend a kernel launch costs ~0.04 ms whatever its size and an elementwise op over an
// activation costs about as much as the product that made it, so a layer written as a dozen tfjs ops
// with autodiff's gradient (each op saving its inputs) spends more time on glue than on arithmetic.
//  - linear: x·W + b (+ ReLU) as one fused product (tf.fused.matMul: the bias and the activation in the
//    product's kernel, XNNPACK on wasm); gradient of plain products with explicit transposes (matmul.ts).
//  - layerNorm: the usual forward; the closed-form gradient (12 kernels instead of autodiff's ~25).
//  - attention: causal multi-head attention on time-major rows (row t·B + b of a [T·B, 3D] qkv), laid
//    out so that every batched product is a channel product (matmul.ts) whose operands and results need
//    3 transposes in the forward pass and 5 in the backward pass, against ~30 for products over
//    [B, H, T, dh] heads.
import { tf } from "./backend.ts";
import { channelProduct } from "./matmul.ts";

/** x·W + b, optionally through a ReLU. x [R, K], w [K, N], b [N] → [R, N]. */
export function linear(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, activation: "linear" | "relu" = "linear"): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, wi, bi, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const y = tf.fused.matMul({ a: xi, b: wi, bias: bi, activation });
    save(activation === "relu" ? [xi, wi, y] : [xi, wi]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [sx, sw, sy] = saved as tf.Tensor2D[];
        const g = (activation === "relu" ? tf.mul(dy as tf.Tensor, tf.step(sy)) : dy) as tf.Tensor2D;
        return [tf.matMul(g, tf.transpose(sw)), ...weightAndBiasGradients(sx, g)];
      },
    };
  });
  return f(x, w, b) as tf.Tensor2D;
}

/**
 * The gradients of x·W + b's weights and bias: xᵀ·g [K, N] and g's column sums [N], for x [R, K] and g [R, N].
 * One of x and g is transposed and the other packed as the product's right operand, each a pass over R rows;
 * transposing the wider one cost more than packing it (measured on wasm), so the narrower one is transposed.
 * For x wider than g (the MLP's output layer: K = 4N) that is (gᵀ·x)ᵀ, with the bias gradient as gᵀ's row
 * sums: 15–20 % less time for those gradients on the quickstart's shapes, the same sums. A single column g
 * (the value head) keeps xᵀ·g: gᵀ·x would be a one-row product that packs all of x.
 */
function weightAndBiasGradients(x: tf.Tensor2D, g: tf.Tensor2D): [tf.Tensor2D, tf.Tensor1D] {
  const [K, N] = [x.shape[1], g.shape[1]];
  if (K <= N || N === 1) return [tf.matMul(tf.transpose(x), g), packedColumnSums(g)];
  const gT = tf.transpose(g); // [N, R]
  return [tf.transpose(tf.matMul(gT, x)) as tf.Tensor2D, tf.sum(gT, 1) as tf.Tensor1D];
}

/** `linear` without a gradient (decoding): the fused product alone, no custom-gradient bookkeeping. */
export function linearValue(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, activation: "linear" | "relu" = "linear"): tf.Tensor2D {
  return tf.fused.matMul({ a: x, b: w as tf.Tensor2D, bias: b, activation }) as tf.Tensor2D;
}

/** `layerNorm` without a gradient (decoding). */
export function layerNormValue(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b) as tf.Tensor2D;
}

/** Layer normalisation over the last axis: (x − mean) / √(var + 1e-5) · g + b. x [R, D], g, b [D]. */
export function layerNorm(x: tf.Tensor2D, g: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, gi, bi, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const { mean, variance } = tf.moments(xi, -1, true);
    const std = tf.sqrt(tf.add(variance, 1e-5)); // [R, 1]
    const xhat = tf.div(tf.sub(xi, mean), std);
    save([xhat, std, gi]);
    return {
      value: tf.add(tf.mul(xhat, gi), bi),
      gradFunc: (dy, saved) => {
        const [sxhat, sstd, sg] = saved;
        const d = dy as tf.Tensor2D;
        const dxhat = tf.mul(d, sg);
        // dx = (dx̂ − mean(dx̂) − x̂ · mean(dx̂ · x̂)) / std
        const centred = tf.sub(tf.sub(dxhat, tf.mean(dxhat, -1, true)), tf.mul(sxhat, tf.mean(tf.mul(dxhat, sxhat), -1, true)));
        // Reductions over rows, not products with a row of ones: d and d ⊙ x̂ are fresh, and a product
        // would pack each first (see packedColumnSums).
        return [tf.div(centred, sstd), tf.sum(tf.mul(d, sxhat), 0), tf.sum(d, 0)];
      },
    };
  });
  return f(x, g, b) as tf.Tensor2D;
}

/**
 * The decoder's cache of one layer's keys and values, both [B·H, Tk, dh]: attentionStep's products read
 * them as batched operands, and a new position appends to each as one contiguous run per (sequence, head).
 */
export interface KeyValues {
  k: tf.Tensor3D;
  v: tf.Tensor3D;
}

/** Attention's shape: T query positions of B rows (time-major), H heads of dh channels. */
export interface AttentionShape {
  T: number;
  B: number;
  H: number;
  dh: number;
}

/** Up to this many rows, splitting one q|k|v product costs less than three products. */
const SMALL_ROWS = 256;

/**
 * Column sums of x [R, N] → [N] for an x that a product has just taken as its right operand (a weight's
 * gradient xᵀ·g): a product with a row of ones. XNNPACK (wasm) packs a product's right operand before
 * multiplying and keeps the packing while the tensor lives, so this reuses it, where tf.sum(x, 0) would
 * transpose x first. For a fresh x the packing costs ~3× tf.sum(x, 0), which is then the faster.
 */
function packedColumnSums(x: tf.Tensor): tf.Tensor1D {
  const [R, N] = x.shape;
  return tf.reshape(tf.matMul(tf.ones([1, R]), x), [N]) as tf.Tensor1D;
}

/**
 * x·W + b per part of W's columns (q | k | v), each as [T, B·H, dh], the queries scaled by 1/√dh (the
 * scores' scale): three products with no split of a large [T·B, 3D] activation (a strided copy, slow on
 * wasm), the scale on q's weights and bias ([D, D]) rather than on q itself; a few rows (a decoding step)
 * take one product and split it instead.
 */
function projections(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, s: AttentionShape): [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D] {
  const heads = (t: tf.Tensor) => tf.reshape(t, [-1, s.B * s.H, s.dh]) as tf.Tensor3D;
  if (x.shape[0] <= SMALL_ROWS) {
    const [q, k, v] = tf.split(tf.fused.matMul({ a: x, b: w as tf.Tensor2D, bias: b }), 3, 1);
    return [heads(tf.mul(q, queryScale(s))), heads(k), heads(v)];
  }
  const [wq, wk, wv] = scaledQueryWeights(w, b, s);
  return [wq, wk, wv].map(({ w: wi, b: bi }) => heads(tf.fused.matMul({ a: x, b: wi, bias: bi }))) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D];
}

/** The scores' scale 1/√dh. */
function queryScale(s: AttentionShape): number {
  return 1 / Math.sqrt(s.dh);
}

/** W [D, 3D] and b [3D] split into q | k | v, q's part scaled by 1/√dh: projections give scaled queries. */
function scaledQueryWeights(w: tf.Tensor, b: tf.Tensor, s: AttentionShape): { w: tf.Tensor2D; b: tf.Tensor1D }[] {
  const ws = tf.split(w, 3, 1) as tf.Tensor2D[];
  const bs = tf.split(b, 3, 0) as tf.Tensor1D[];
  ws[0] = tf.mul(ws[0], queryScale(s));
  bs[0] = tf.mul(bs[0], queryScale(s));
  return ws.map((wi, i) => ({ w: wi, b: bs[i] }));
}

/**
 * Keys or values [Tk, N, dh] as a channel product's filter [dh, N, Tk]: the same numbers as
 * tf.transpose(t, [2, 1, 0]), as two transposes that each move contiguous runs. wasm's 3-D transpose
 * reads the reversed axes a float at a time at a stride of N·dh floats (16 KB for the quickstart's
 * minibatch); swapping the last two axes and then the two halves of a 2-D view reads along rows.
 */
function asFilter(t: tf.Tensor3D): tf.Tensor3D {
  const [Tk, N, dh] = t.shape;
  const timeFirst = tf.reshape(tf.transpose(t, [0, 2, 1]), [Tk, dh * N]); // [Tk, dh·N]
  return tf.reshape(tf.transpose(timeFirst), [dh, N, Tk]) as tf.Tensor3D;
}

/** softmax(q·kᵀ + mask) over the keys → [T, B·H, Tk], for q [T, B·H, dh] already scaled by 1/√dh; mask broadcasts to [T, B, H, Tk]. */
function attentionWeights(q: tf.Tensor3D, kFilter: tf.Tensor3D, mask: tf.Tensor, s: AttentionShape): tf.Tensor3D {
  const Tk = kFilter.shape[2];
  const scores = channelProduct(tf.transpose(q, [0, 2, 1]) as tf.Tensor3D, kFilter); // [T, B·H, Tk]
  return tf.reshape(tf.softmax(tf.add(tf.reshape(scores, [s.T, s.B, s.H, Tk]), mask)), [s.T, s.B * s.H, Tk]) as tf.Tensor3D;
}

/**
 * The gradient of the scores through the softmax, dS = p ⊙ (dP − Σ_keys dP ⊙ p), with the row sums taken
 * as Σ_channels dOut ⊙ out (FlashAttention's D): Σ_s p_s·dP_s = Σ_s p_s Σ_j dOut_j·v_sj = Σ_j dOut_j·out_j,
 * a pass over [T, N, dh] in place of two over the weights [T, N, Tk]. p, dP [T, N, Tk]; dOut [T, N, dh];
 * out [T·B, D] the attention's output. → [T, N, Tk]
 */
function softmaxGradient(p: tf.Tensor3D, dP: tf.Tensor3D, dOut: tf.Tensor3D, out: tf.Tensor2D): tf.Tensor3D {
  const rowSums = tf.sum(tf.mul(dOut, tf.reshape(out, dOut.shape)), -1, true); // [T, N, 1]
  return tf.mul(p, tf.sub(dP, rowSums)) as tf.Tensor3D;
}

/** The attention weights' mix of the values: p [T, B·H, Tk], v [Tk, B·H, dh] → [T·B, D]. */
function mixValues(p: tf.Tensor3D, v: tf.Tensor3D, s: AttentionShape): tf.Tensor2D {
  return tf.reshape(channelProduct(tf.transpose(p, [0, 2, 1]) as tf.Tensor3D, v), [s.T * s.B, s.H * s.dh]) as tf.Tensor2D;
}

/**
 * Multi-head self-attention, the q | k | v projection included, differentiable in x, w and b: every position
 * attends over the positions the additive `mask` leaves visible (causal attention in training). x: [T·B, D]
 * time-major (row t·B + b), the layer-normed input; w [D, 3D], b [3D] with q | k | v side by side and heads
 * of dh channels within each; mask broadcasts to [T, B, H, T]. → [T·B, D] (before the output projection)
 */
export function attention(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, mask: tf.Tensor, s: AttentionShape): tf.Tensor2D {
  const scale = 1 / Math.sqrt(s.dh);
  const rows = s.T * s.B;
  const d = s.H * s.dh;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xi, wi, bi, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const [q, k, v] = projections(xi, wi, bi, s); // q scaled
    const p = attentionWeights(q, asFilter(k), mask, s);
    const out = mixValues(p, v, s);
    save([xi, wi, q, k, v, p, out]);
    return {
      value: out,
      gradFunc: (dy, saved) => {
        const [sx, sw, sq, sk, sv, sp, sout] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor3D, tf.Tensor2D];
        const dOut = tf.reshape(dy as tf.Tensor, [s.T, s.B * s.H, s.dh]) as tf.Tensor3D; // [T, N, dh]
        const dP = channelProduct(tf.transpose(dOut, [0, 2, 1]) as tf.Tensor3D, asFilter(sv)); // [T, N, Tk]
        const dV = channelProduct(tf.transpose(sp, [2, 0, 1]) as tf.Tensor3D, dOut); // [Tk, N, dh]
        const dS = softmaxGradient(sp, dP, dOut, sout); // [T, N, Tk]
        const dQ = tf.mul(channelProduct(tf.transpose(dS, [0, 2, 1]) as tf.Tensor3D, sk), scale); // [T, N, dh]
        const dK = channelProduct(tf.transpose(dS, [2, 0, 1]) as tf.Tensor3D, sq); // [Tk, N, dh] (sq is scaled)
        const dParts = [dQ, dK, dV].map((t) => tf.reshape(t, [rows, d]) as tf.Tensor2D);
        const xT = tf.transpose(sx); // [D, T·B]
        const wT = tf.split(tf.transpose(sw), 3, 0); // 3 × [D, D]: rows of Wᵀ
        const dx = tf.addN(dParts.map((g, i) => tf.matMul(g, wT[i])));
        const dw = tf.concat(
          dParts.map((g) => tf.matMul(xT, g)),
          1,
        );
        const db = tf.concat(
          dParts.map((g) => packedColumnSums(g)),
          0,
        );
        return [dx, dw, db];
      },
    };
  });
  return f(x, w, b) as tf.Tensor2D;
}

/**
 * Attention over a prompt for incremental decoding (no gradient): the T positions attend over each other
 * under `mask` ([T, B, 1, T]); returns the output [T·B, D] and the keys and values as attentionStep's cache.
 */
export function attentionPrompt(x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, mask: tf.Tensor, s: AttentionShape): { out: tf.Tensor2D; kv: KeyValues } {
  const [q, k, v] = projections(x, w, b, s); // [T, N, dh] each, q scaled
  const p = attentionWeights(q, asFilter(k), mask, s);
  const kv = { k: tf.transpose(k, [1, 0, 2]) as tf.Tensor3D, v: tf.transpose(v, [1, 0, 2]) as tf.Tensor3D }; // [N, T, dh]
  return { out: mixValues(p, v, s), kv };
}

/**
 * One new position per sequence attending over `past` and itself (decoding after the prompt, no gradient):
 * x [B, D] → the output [B, D] and the grown cache. mask: additive over the keys, [B, 1, Tk] once this
 * step's key is appended. With one query row per (sequence, head) both products are batched matrix-vector
 * products, tf.matMul's: as channel products (training's attention) each token would pack the whole cache
 * as a convolution filter on wasm. The cache grows along its middle axis, one contiguous copy per
 * (sequence, head); wasm's Concat copies each run of the axes before the joined one separately, which
 * made a cache with time last (N·dh runs per token) the costliest op of a decoding step.
 */
export function attentionStep(
  x: tf.Tensor2D,
  w: tf.Tensor,
  b: tf.Tensor,
  mask: tf.Tensor,
  s: AttentionShape,
  past: KeyValues,
): { out: tf.Tensor2D; kv: KeyValues } {
  if (s.T !== 1) throw new Error(`attentionStep: one new position per sequence, not ${s.T}`);
  const N = s.B * s.H;
  const [q0, kNew, vNew] = projections(x, w, b, s); // [1, N, dh] each, q scaled
  const q = tf.reshape(q0, [N, 1, s.dh]);
  const k = tf.concat([past.k, tf.reshape(kNew, [N, 1, s.dh])], 1) as tf.Tensor3D; // [N, Tk, dh]
  const v = tf.concat([past.v, tf.reshape(vNew, [N, 1, s.dh])], 1) as tf.Tensor3D; // [N, Tk, dh]
  const Tk = k.shape[1];
  const scores = tf.reshape(tf.matMul(q, k, false, true), [s.B, s.H, Tk]); // [B, H, Tk]
  const p = tf.reshape(tf.softmax(tf.add(scores, tf.reshape(mask, [s.B, 1, Tk]))), [N, 1, Tk]);
  const out = tf.reshape(tf.matMul(p, v), [s.B, s.H * s.dh]) as tf.Tensor2D; // [N, 1, dh] → [B, D]
  return { out, kv: { k, v } };
}

/**
 * Attention of some query rows over every key: the last layer of the trunk, where only the positions a loss
 * reads need an output (model.ts) but every position still supplies its key and value. xq [Q·B, D] holds
 * Q query slots of each of the B sequences, time-major (row j·B + b: slot j of sequence b), gathered from
 * the layer-normed input x [Tk·B, D] (time-major, every position); w, b as in `attention`; mask broadcasts
 * to [Q, B, H, Tk] and hides from each slot the keys after its own position (its row of the causal mask),
 * so every slot gets exactly the output `attention` gives at that position. Differentiable in xq, x, w and
 * b. → [Q·B, D] (before the output projection)
 */
export function attentionAt(xq: tf.Tensor2D, x: tf.Tensor2D, w: tf.Tensor, b: tf.Tensor, mask: tf.Tensor, s: AttentionShape): tf.Tensor2D {
  const scale = 1 / Math.sqrt(s.dh);
  const d = s.H * s.dh;
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xqi, xi, wi, bi, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    // Three products, not one split: q reads other rows (xq) than k and v (x).
    const parts = scaledQueryWeights(wi, bi, s);
    const part = (rows: tf.Tensor2D, i: number) =>
      tf.reshape(tf.fused.matMul({ a: rows, b: parts[i].w, bias: parts[i].b }), [-1, s.B * s.H, s.dh]) as tf.Tensor3D;
    const q = part(xqi, 0); // [Q, N, dh], N = B·H, scaled
    const k = part(xi, 1); // [Tk, N, dh]
    const v = part(xi, 2); // [Tk, N, dh]
    const p = attentionWeights(q, asFilter(k), mask, s); // [Q, N, Tk]
    const out = mixValues(p, v, s);
    save([xqi, xi, wi, q, k, v, p, out]);
    return {
      value: out,
      gradFunc: (dy, saved) => {
        const [sxq, sx, sw, sq, sk, sv, sp, sout] = saved as [
          tf.Tensor2D,
          tf.Tensor2D,
          tf.Tensor2D,
          tf.Tensor3D,
          tf.Tensor3D,
          tf.Tensor3D,
          tf.Tensor3D,
          tf.Tensor2D,
        ];
        // The backward pass of `attention` with Q query slots in place of T positions.
        const dOut = tf.reshape(dy as tf.Tensor, [s.T, s.B * s.H, s.dh]) as tf.Tensor3D; // [Q, N, dh]
        const dP = channelProduct(tf.transpose(dOut, [0, 2, 1]) as tf.Tensor3D, asFilter(sv)); // [Q, N, Tk]
        const dV = channelProduct(tf.transpose(sp, [2, 0, 1]) as tf.Tensor3D, dOut); // [Tk, N, dh]
        const dS = softmaxGradient(sp, dP, dOut, sout); // [Q, N, Tk]
        const dQ = tf.reshape(tf.mul(channelProduct(tf.transpose(dS, [0, 2, 1]) as tf.Tensor3D, sk), scale), [-1, d]) as tf.Tensor2D; // [Q·B, D]
        const dK = tf.reshape(channelProduct(tf.transpose(dS, [2, 0, 1]) as tf.Tensor3D, sq), [-1, d]) as tf.Tensor2D; // [Tk·B, D] (sq is scaled)
        const dVr = tf.reshape(dV, [-1, d]) as tf.Tensor2D;
        const wT = tf.split(tf.transpose(sw), 3, 0); // 3 × [D, D]: rows of Wᵀ
        const xT = tf.transpose(sx); // [D, Tk·B]
        const dxq = tf.matMul(dQ, wT[0]);
        const dx = tf.add(tf.matMul(dK, wT[1]), tf.matMul(dVr, wT[2]));
        const dw = tf.concat([tf.matMul(tf.transpose(sxq), dQ), tf.matMul(xT, dK), tf.matMul(xT, dVr)], 1);
        const db = tf.concat([packedColumnSums(dQ), packedColumnSums(dK), packedColumnSums(dVr)], 0);
        return [dxq, dx, dw, db];
      },
    };
  });
  return f(xq, x, w, b) as tf.Tensor2D;
}

/** Each row's target as an index into the flattened [P·V] logits; `who` names the caller in the error. */
function flatTargets(P: number, V: number, targets: Int32Array, who: string): tf.Tensor1D {
  if (targets.length !== P) throw new Error(`${who}: ${P} rows, ${targets.length} targets`);
  return tf.tensor1d(
    Int32Array.from(targets, (t, i) => i * V + t),
    "int32",
  ); // [P] into the flattened [P·V]
}

/** softmax(z) and log Σ exp z per row, shifted by the row maximum for stability. z [P, V] → p [P, V], lse [P, 1]. */
function softmaxAndLogSumExp(z: tf.Tensor2D): { p: tf.Tensor2D; lse: tf.Tensor2D } {
  const max = tf.max(z, -1, true); // [P, 1]
  const e = tf.exp(tf.sub(z, max)); // [P, V]
  const sumE = tf.sum(e, -1, true); // [P, 1]
  return { p: tf.div(e, sumE), lse: tf.add(max, tf.log(sumE)) };
}

/** z_t per row: the target's (scaled) logit. z [P, V], flat [P] → [P, 1]. */
function pickTargets(z: tf.Tensor2D, flat: tf.Tensor1D): tf.Tensor2D {
  const [P, V] = z.shape;
  return tf.reshape(tf.gather(tf.reshape(z, [P * V]), flat), [P, 1]);
}

/**
 * The log-probability of each row's target token and the entropy of each row's distribution, softmax(logits
 * / temperature) over the vocabulary, as one op with a closed-form gradient. logits [P, V], targets [P] →
 * [2, P]: row 0 log π(target), row 1 the entropy H.
 *
 * The losses read both over every loss position ([P, V] is the largest activation of a training step), and
 * wasm runs each elementwise pass over it as a scalar loop: log-softmax, a one-hot product for the target
 * and exp(log p)·log p for the entropy cost ~21 passes and 3 exponentials with autodiff's gradient; this
 * takes ~16 passes and one exponential. With z = logits / τ, lse = log Σ exp z, p = softmax z and S = Σ p·z:
 *   log π(t) = z_t − lse                       ∂/∂z = onehot(t) − p
 *   H = lse − S  (= −Σ p·log p)                ∂/∂z = −p ⊙ (z − S)   (= −p ⊙ (log p + H))
 */
export function targetLogProbsAndEntropy(logits: tf.Tensor2D, targets: Int32Array, temperature: number): tf.Tensor2D {
  const [P, V] = logits.shape;
  const flat = flatTargets(P, V, targets, "targetLogProbsAndEntropy");
  // The indices are an input (with a zero "gradient") so that the tape keeps them until the backward pass.
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [li, fi, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const z = temperature === 1 ? li : (tf.div(li, temperature) as tf.Tensor2D);
    const { p, lse } = softmaxAndLogSumExp(z); // [P, V], [P, 1]
    const S = tf.sum(tf.mul(p, z), -1, true); // [P, 1]
    const picked = tf.sub(pickTargets(z, fi), lse); // [P, 1]
    save([p, z, S, fi]);
    return {
      value: tf.concat([tf.reshape(picked, [1, P]), tf.reshape(tf.sub(lse, S), [1, P])], 0) as tf.Tensor2D,
      gradFunc: (dy, saved) => {
        const [sp, sz, sS, sf] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const [dPicked, dEnt] = tf.split(tf.reshape(dy as tf.Tensor, [2, P, 1]), 2, 0).map((t) => tf.reshape(t, [P, 1]));
        // p ⊙ (dH · (S − z) − dlogπ), then + dlogπ at each row's target
        const dense = tf.mul(sp, tf.sub(tf.mul(dEnt, tf.sub(sS, sz)), dPicked));
        const dz = tf.add(dense, tf.reshape(tf.scatterND(tf.reshape(sf, [P, 1]), tf.reshape(dPicked, [P]), [P * V]), [P, V]));
        return [temperature === 1 ? dz : tf.div(dz, temperature), tf.zerosLike(sf)];
      },
    };
  });
  return f(logits, flat) as tf.Tensor2D;
}

/**
 * The log-probability of each row's target token under softmax(logits / temperature), as one op with a
 * closed-form gradient: what behaviour cloning reads, without targetLogProbsAndEntropy's entropy (two passes
 * over [P, V] each way). logits [P, V], targets [P] → [P]. With z = logits / τ and p = softmax z:
 *   log π(t) = z_t − log Σ exp z        ∂/∂z = onehot(t) − p
 */
export function targetLogProbs(logits: tf.Tensor2D, targets: Int32Array, temperature: number): tf.Tensor1D {
  const [P, V] = logits.shape;
  const flat = flatTargets(P, V, targets, "targetLogProbs");
  // The indices are an input (with a zero "gradient") so that the tape keeps them until the backward pass.
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [li, fi, save] = args as [tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
    const z = temperature === 1 ? li : (tf.div(li, temperature) as tf.Tensor2D);
    const { p, lse } = softmaxAndLogSumExp(z); // [P, V], [P, 1]
    save([p, fi]);
    return {
      value: tf.reshape(tf.sub(pickTargets(z, fi), lse), [P]) as tf.Tensor1D,
      gradFunc: (dy, saved) => {
        const [sp, sf] = saved as [tf.Tensor2D, tf.Tensor1D];
        const d = dy as tf.Tensor1D; // [P]
        // −p ⊙ d, then + d at each row's target
        const dz = tf.add(tf.mul(sp, tf.neg(tf.reshape(d, [P, 1]))), tf.reshape(tf.scatterND(tf.reshape(sf, [P, 1]), d, [P * V]), [P, V]));
        return [temperature === 1 ? dz : tf.div(dz, temperature), tf.zerosLike(sf)];
      },
    };
  });
  return f(logits, flat) as tf.Tensor1D;
}
