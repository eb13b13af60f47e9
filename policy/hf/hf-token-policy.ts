// A LlamaPolicy as the decoding loop's TokenPolicy, sampling over its tokenizer's ids only. Published
// models pad the output head past the tokenizer (Qwen2's vocab_size 151936 against 151665 tokens) so that
// its rows divide evenly; those rows were never trained, and an id sampled there has no text. The decoder's
// logits are cut to the tokenizer's size, so the rest of the loop (sampling, log-probs) never sees them.
import type { TokenPolicy } from "../decoding.ts";
import type { Decoder } from "../model.ts";
import type { LlamaPolicy } from "./llama-model.ts";

export function tokenPolicyFor(model: LlamaPolicy, tokenizerSize: number): TokenPolicy {
  const V = model.vocabSize;
  if (tokenizerSize > V) throw new Error(`tokenizer has ${tokenizerSize} ids, more than the model's vocab_size ${V}: ids past ${V - 1} have no output row`);
  if (tokenizerSize === V) return model;
  return {
    vocabSize: tokenizerSize,
    decoder: (contexts) => {
      for (const c of contexts)
        for (const id of c) if (id >= tokenizerSize) throw new Error(`context id ${id} is not a token of the tokenizer (size ${tokenizerSize})`);
      return truncated(model.decoder(contexts), V, tokenizerSize, contexts.length);
    },
  };
}

/** `inner`'s logits [B × V] cut to their first `size` columns, [B × size]. */
function truncated(inner: Decoder, V: number, size: number, B: number): Decoder {
  return {
    logits: () => {
      const all = inner.logits();
      const out = new Float32Array(B * size);
      for (let b = 0; b < B; b++) out.set(all.subarray(b * V, b * V + size), b * size);
      return out;
    },
    push: (tokens) => inner.push(tokens),
    dispose: () => inner.dispose(),
  };
}
