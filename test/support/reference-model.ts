// The transformer of policy/model.ts as it was written before the speed work (commit ab4351a): batch-major
// [B, T] rows, heads as [B, H, T, dh], plain tfjs ops and tfjs's own gradients (tf.matMul with its transpose
// flags). Slow on wasm, but an independent statement of the maths the fast model must reproduce.
import { tf } from "../../policy/backend.ts";
import { gatherRows, type PolicyModel } from "../../policy/model.ts";

function layerNorm<T extends tf.Tensor>(x: T, g: tf.Tensor, b: tf.Tensor): T {
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, 1e-5))), g), b) as T;
}

/** Logits [B, T, V] and values [B, T] of right-padded ids [B, T] under `model`'s parameters. */
export function referenceForward(model: PolicyModel, ids: tf.Tensor2D): { logits: tf.Tensor3D; values: tf.Tensor2D } {
  const c = model.config;
  const p = (name: string) => model.params.get(name) as tf.Tensor;
  const [B, T] = ids.shape;
  const d = c.dModel;
  const H = c.heads;
  const dh = d / H;
  const tok = gatherRows(p("tok_emb"), tf.reshape(ids, [B * T]) as tf.Tensor1D);
  let x = tf.add(tf.reshape(tok, [B, T, d]), tf.slice(p("pos_emb"), [0, 0], [T, d])) as tf.Tensor3D;
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = -1e9;
  const mask = tf.tensor2d(m, [T, T]);
  for (let l = 0; l < c.layers; l++) {
    const normed = layerNorm(x, p(`h${l}.ln1.g`), p(`h${l}.ln1.b`));
    const qkv = tf.add(tf.matMul(tf.reshape(normed, [B * T, d]), p(`h${l}.attn.w_qkv`)), p(`h${l}.attn.b_qkv`));
    const [q, k, v] = tf.split(tf.reshape(qkv, [B, T, 3 * d]), 3, 2).map((t) => tf.transpose(tf.reshape(t, [B, T, H, dh]), [0, 2, 1, 3]));
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), mask);
    const att = tf.matMul(tf.softmax(scores), v);
    const merged = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B * T, d]);
    const x1 = tf.add(x, tf.reshape(tf.add(tf.matMul(merged, p(`h${l}.attn.w_o`)), p(`h${l}.attn.b_o`)), [B, T, d]));
    const n2 = tf.reshape(layerNorm(x1, p(`h${l}.ln2.g`), p(`h${l}.ln2.b`)), [B * T, d]);
    const hidden = tf.relu(tf.add(tf.matMul(n2, p(`h${l}.mlp.w_in`)), p(`h${l}.mlp.b_in`)));
    x = tf.add(x1, tf.reshape(tf.add(tf.matMul(hidden, p(`h${l}.mlp.w_out`)), p(`h${l}.mlp.b_out`)), [B, T, d])) as tf.Tensor3D;
  }
  const h = tf.reshape(layerNorm(x, p("ln_f.g"), p("ln_f.b")), [B * T, d]);
  const logits = tf.reshape(tf.matMul(h, p("lm_head")), [B, T, c.vocabSize]) as tf.Tensor3D;
  const values = tf.reshape(tf.add(tf.matMul(h, p("value_head.w")), p("value_head.b")), [B, T]) as tf.Tensor2D;
  return { logits, values };
}
