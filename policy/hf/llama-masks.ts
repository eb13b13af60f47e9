// The additive attention masks of the Llama-family model: 0 where a query may read a key, MASKED where it
// may not (added to the scores before the softmax, so a masked key's weight is exp(−1e9) = 0).
import { tf } from "../backend.ts";

export const MASKED = -1e9;

/** Causal: position i reads keys 0 … i. [T, T] */
export function causalMask(T: number): tf.Tensor2D {
  const m = new Float32Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) m[i * T + j] = MASKED;
  return tf.tensor2d(m, [T, T]);
}

/**
 * A decoding pass over left-padded rows: T new query columns per row, the last T of Tk key columns, each
 * reading the keys up to its own column except the row's `pads[b]` leading padding columns. [B, 1, T, Tk]
 * (broadcast over the heads).
 */
export function paddedCausalMask(pads: readonly number[], T: number, Tk: number): tf.Tensor4D {
  const B = pads.length;
  const m = new Float32Array(B * T * Tk);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const column = Tk - T + i; // the query's own key column
      const row = (b * T + i) * Tk;
      for (let j = 0; j < Tk; j++) if (j < pads[b] || j > column) m[row + j] = MASKED;
    }
  }
  return tf.tensor4d(m, [B, 1, T, Tk]);
}
