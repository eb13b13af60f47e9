// Tiny random Llama-family models in the Hugging Face layout, written by the tests themselves (no model hub
// is reachable, and none is needed): config.json plus model.safetensors with seeded random weights, each
// tensor already rounded to the dtype it is stored in, so that the values a test computes with are exactly
// the values the loader reads.
import { Rng } from "../../core/rng.ts";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../policy/hf/float-formats.ts";
import type { FloatDtype, StoredTensor } from "../../policy/hf/safetensors.ts";
import { writeTensorsDir } from "../../policy/hf/safetensors-dir.ts";

export interface TinyModelOptions {
  modelType: "llama" | "qwen2";
  hiddenSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediateSize: number;
  vocabSize: number;
  tie: boolean;
  dtype: FloatDtype;
  seed: number;
  /** Llama's attention_bias (q, k, v and o). */
  attentionBias?: boolean;
  /** Write a value head too. */
  valueHead?: boolean;
  /** max_position_embeddings (64 unless set). */
  maxPositions?: number;
  /** Extra tensors written beside the model's (to test what the loader does with them). */
  extra?: StoredTensor[];
}

export function tinyConfigJson(o: TinyModelOptions): Record<string, unknown> {
  return {
    architectures: [o.modelType === "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"],
    model_type: o.modelType,
    hidden_size: o.hiddenSize,
    intermediate_size: o.intermediateSize,
    num_hidden_layers: o.layers,
    num_attention_heads: o.heads,
    num_key_value_heads: o.kvHeads,
    hidden_act: "silu",
    max_position_embeddings: o.maxPositions ?? 64,
    rms_norm_eps: 1e-6,
    rope_theta: 10000,
    rope_scaling: null,
    vocab_size: o.vocabSize,
    tie_word_embeddings: o.tie,
    ...(o.modelType === "llama" ? { attention_bias: o.attentionBias ?? false, mlp_bias: false } : { use_sliding_window: false }),
    torch_dtype: { F32: "float32", F16: "float16", BF16: "bfloat16" }[o.dtype],
    bos_token_id: 1,
    eos_token_id: 2,
  };
}

/** Values as `dtype` holds them. */
export function roundTo(dtype: FloatDtype, data: Float32Array): Float32Array {
  if (dtype === "BF16") return data.map((x) => bf16ToF32(f32ToBf16(x)));
  if (dtype === "F16") return data.map((x) => f16ToF32(f32ToF16(x)));
  return data;
}

/** A tiny tied Qwen2 in float32 with a value head (2 layers, hidden 32, 4 heads sharing 2 kv heads, vocabulary 61): give it a seed. */
export const TINY_QWEN2: Omit<TinyModelOptions, "seed"> = {
  modelType: "qwen2",
  hiddenSize: 32,
  layers: 2,
  heads: 4,
  kvHeads: 2,
  intermediateSize: 64,
  vocabSize: 61,
  tie: true,
  dtype: "F32",
  valueHead: true,
};

/** The tiny model's tensors by Hugging Face name, random: norms near 1, the rest of scale `std`. */
export function tinyTensors(o: TinyModelOptions): StoredTensor[] {
  const rng = new Rng(o.seed); // seeded, so a failure reproduces
  const next = () => rng.next();
  const d = o.hiddenSize;
  const dh = d / o.heads;
  const out: StoredTensor[] = [];
  const add = (name: string, shape: number[], kind: "norm" | "weight" | "bias") => {
    const size = shape.reduce((a, b) => a * b, 1);
    const std = kind === "weight" ? 0.15 : 0.05;
    const data = Float32Array.from({ length: size }, () => (kind === "norm" ? 1 : 0) + (next() * 2 - 1) * std * Math.sqrt(3));
    out.push({ name, shape, dtype: o.dtype, data: roundTo(o.dtype, data) });
  };
  add("model.embed_tokens.weight", [o.vocabSize, d], "weight");
  for (let l = 0; l < o.layers; l++) {
    const p = `model.layers.${l}`;
    const qkvBias = o.modelType === "qwen2" || o.attentionBias;
    add(`${p}.input_layernorm.weight`, [d], "norm");
    add(`${p}.self_attn.q_proj.weight`, [o.heads * dh, d], "weight");
    if (qkvBias) add(`${p}.self_attn.q_proj.bias`, [o.heads * dh], "bias");
    add(`${p}.self_attn.k_proj.weight`, [o.kvHeads * dh, d], "weight");
    if (qkvBias) add(`${p}.self_attn.k_proj.bias`, [o.kvHeads * dh], "bias");
    add(`${p}.self_attn.v_proj.weight`, [o.kvHeads * dh, d], "weight");
    if (qkvBias) add(`${p}.self_attn.v_proj.bias`, [o.kvHeads * dh], "bias");
    add(`${p}.self_attn.o_proj.weight`, [d, o.heads * dh], "weight");
    if (o.modelType === "llama" && o.attentionBias) add(`${p}.self_attn.o_proj.bias`, [d], "bias");
    add(`${p}.post_attention_layernorm.weight`, [d], "norm");
    add(`${p}.mlp.gate_proj.weight`, [o.intermediateSize, d], "weight");
    add(`${p}.mlp.up_proj.weight`, [o.intermediateSize, d], "weight");
    add(`${p}.mlp.down_proj.weight`, [d, o.intermediateSize], "weight");
  }
  add("model.norm.weight", [d], "norm");
  if (!o.tie) add("lm_head.weight", [o.vocabSize, d], "weight");
  if (o.valueHead) {
    add("v_head.summary.weight", [1, d], "weight");
    add("v_head.summary.bias", [1], "bias");
  }
  return out;
}

/** Writes the tiny model into `dir` (created); returns its tensors. */
export async function writeTinyModel(dir: string, o: TinyModelOptions): Promise<StoredTensor[]> {
  mkdirSync(dir, { recursive: true });
  const tensors = tinyTensors(o);
  writeFileSync(join(dir, "config.json"), JSON.stringify(tinyConfigJson(o), null, 2));
  await writeTensorsDir(dir, [...tensors, ...(o.extra ?? [])]);
  return tensors;
}
