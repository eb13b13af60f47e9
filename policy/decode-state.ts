// What a key/value-cached decoder keeps between tokens, for both models (model.ts's KvDecoder and
// hf/llama-decoder.ts): the next-token logits and each layer's keys and values. A decoding pass runs in a
// tidy scope, so everything it makes but these is freed when it returns; the previous state is freed once
// the new one exists (the pass reads the old cache).
import { tf } from "./backend.ts";

/** One layer's cached keys and values (the layout is the model's own). */
export interface CachedLayer<T extends tf.Tensor> {
  k: T;
  v: T;
}

export interface DecodeState<T extends tf.Tensor> {
  /** Next-token logits of every row, [B, V]. */
  next: tf.Tensor2D;
  cache: CachedLayer<T>[];
}

/** Runs one decoding pass and keeps its logits and cache past the pass's tidy scope. */
export function keepDecodeStep<T extends tf.Tensor>(pass: () => { logits: tf.Tensor2D; cache: CachedLayer<T>[] }): DecodeState<T> {
  const kept = tf.tidy(() => {
    const out = pass();
    return [out.logits, ...out.cache.flatMap((layer) => [layer.k, layer.v])];
  });
  const cache: CachedLayer<T>[] = [];
  for (let i = 1; i < kept.length; i += 2) cache.push({ k: kept[i] as T, v: kept[i + 1] as T });
  return { next: kept[0] as tf.Tensor2D, cache };
}

/** Frees a state's logits and cache. */
export function disposeDecodeState<T extends tf.Tensor>(state: DecodeState<T>): void {
  tf.dispose([state.next, ...state.cache.flatMap((layer) => [layer.k, layer.v])]);
}
