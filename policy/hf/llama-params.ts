// The parameters of a Llama-family causal LM with a value head, by their Hugging Face names and shapes
// (nn.Linear weights [out, in]), in the order transformers' state dict lists them. The value head is
// named as TRL's AutoModelForCausalLMWithValueHead saves it (v_head.summary, an nn.Linear(hidden, 1)), so a
// policy exported here loads there with its critic.
import type { LlamaConfig } from "./llama-config.ts";

export const EMBED = "model.embed_tokens.weight";
export const FINAL_NORM = "model.norm.weight";
export const LM_HEAD = "lm_head.weight";
export const VALUE_WEIGHT = "v_head.summary.weight";
export const VALUE_BIAS = "v_head.summary.bias";

/** The names of layer l's tensors. */
export function layerNames(l: number) {
  const p = `model.layers.${l}`;
  const proj = (part: string) => ({ module: `${p}.${part}`, weight: `${p}.${part}.weight`, bias: `${p}.${part}.bias` });
  return {
    inputNorm: `${p}.input_layernorm.weight`,
    q: proj("self_attn.q_proj"),
    k: proj("self_attn.k_proj"),
    v: proj("self_attn.v_proj"),
    o: proj("self_attn.o_proj"),
    postNorm: `${p}.post_attention_layernorm.weight`,
    gate: proj("mlp.gate_proj"),
    up: proj("mlp.up_proj"),
    down: proj("mlp.down_proj"),
  };
}

/** Every parameter's name and shape; lm_head only when the embeddings are not tied. */
export function llamaParameterShapes(c: LlamaConfig): [string, number[]][] {
  const d = c.hiddenSize;
  const qDim = c.heads * c.headDim;
  const kvDim = c.kvHeads * c.headDim;
  const shapes: [string, number[]][] = [[EMBED, [c.vocabSize, d]]];
  for (let l = 0; l < c.layers; l++) {
    const n = layerNames(l);
    shapes.push([n.inputNorm, [d]]);
    for (const [proj, out, bias] of [
      [n.q, qDim, c.qkvBias],
      [n.k, kvDim, c.qkvBias],
      [n.v, kvDim, c.qkvBias],
    ] as const) {
      shapes.push([proj.weight, [out, d]]);
      if (bias) shapes.push([proj.bias, [out]]);
    }
    shapes.push([n.o.weight, [d, qDim]]);
    if (c.oBias) shapes.push([n.o.bias, [d]]);
    shapes.push([n.postNorm, [d]]);
    for (const [proj, out, inp] of [
      [n.gate, c.intermediateSize, d],
      [n.up, c.intermediateSize, d],
      [n.down, d, c.intermediateSize],
    ] as const) {
      shapes.push([proj.weight, [out, inp]]);
      if (c.mlpBias) shapes.push([proj.bias, [out]]);
    }
  }
  shapes.push([FINAL_NORM, [d]]);
  if (!c.tieWordEmbeddings) shapes.push([LM_HEAD, [c.vocabSize, d]]);
  shapes.push([VALUE_WEIGHT, [1, d]], [VALUE_BIAS, [1]]);
  return shapes;
}
