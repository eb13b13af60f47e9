// config.json of a Llama-family causal LM (Llama, Qwen2), read into what the tfjs model builds from. Only
// the architecture this code computes is accepted: a config asking for anything else (another activation,
// RoPE scaling, sliding-window attention) is refused naming its field, instead of loading a model whose
// logits would silently differ from the original's.

export interface LlamaConfig {
  /** "llama" or "qwen2": Qwen2 is Llama with a bias on the q, k and v projections. */
  modelType: "llama" | "qwen2";
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  maxPositions: number;
  tieWordEmbeddings: boolean;
  /** Bias on the q, k, v projections. */
  qkvBias: boolean;
  /** Bias on the output projection (Llama's attention_bias sets both; Qwen2 has none here). */
  oBias: boolean;
  /** Bias on gate, up and down projections (Llama's mlp_bias). */
  mlpBias: boolean;
}

type Json = Record<string, unknown>;

/** A config.json that this code cannot build; the message names the file and the field. */
export class ModelConfigError extends Error {
  constructor(source: string, field: string, message: string) {
    super(`${source}: ${field} ${message}`);
    this.name = "ModelConfigError";
  }
}

/** Parses config.json's object; `source` (its path) goes into every error. */
export function parseLlamaConfig(json: unknown, source = "config.json"): LlamaConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new ModelConfigError(source, "(top level)", "is not a JSON object");
  const c = json as Json;
  const fail = (field: string, message: string) => new ModelConfigError(source, field, message);
  const modelType = c.model_type;
  if (modelType !== "llama" && modelType !== "qwen2") throw fail("model_type", `is ${JSON.stringify(modelType)}; steppo builds "llama" and "qwen2"`);
  const int = (field: string, fallback?: number): number => {
    const v = c[field] ?? fallback;
    if (!Number.isSafeInteger(v) || (v as number) <= 0) throw fail(field, `is ${JSON.stringify(c[field])}, not a positive integer`);
    return v as number;
  };
  const num = (field: string, value: unknown): number => {
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw fail(field, `is ${JSON.stringify(value)}, not a positive number`);
    return value;
  };
  const bool = (field: string, fallback: boolean): boolean => {
    const v = c[field] ?? fallback;
    if (typeof v !== "boolean") throw fail(field, `is ${JSON.stringify(v)}, not true or false`);
    return v;
  };
  const act = c.hidden_act ?? "silu";
  if (act !== "silu") throw fail("hidden_act", `is ${JSON.stringify(act)}; only "silu" (SwiGLU) is built`);
  if (modelType === "qwen2" && c.use_sliding_window === true) throw fail("use_sliding_window", "is true; sliding-window attention is not built");
  const hiddenSize = int("hidden_size");
  const heads = int("num_attention_heads");
  const kvHeads = int("num_key_value_heads", heads);
  if (heads % kvHeads !== 0) throw fail("num_key_value_heads", `(${kvHeads}) must divide num_attention_heads (${heads})`);
  const headDim = c.head_dim ?? hiddenSize / heads;
  if (!Number.isSafeInteger(headDim) || (headDim as number) <= 0 || (headDim as number) % 2 !== 0) {
    throw fail(
      c.head_dim === undefined ? "hidden_size" : "head_dim",
      `gives a head dimension of ${headDim}; it must be an even integer (rotary embeddings rotate pairs)`,
    );
  }
  const attentionBias = bool("attention_bias", false);
  return {
    modelType,
    vocabSize: int("vocab_size"),
    hiddenSize,
    intermediateSize: int("intermediate_size"),
    layers: int("num_hidden_layers"),
    heads,
    kvHeads,
    headDim: headDim as number,
    rmsNormEps: num("rms_norm_eps", c.rms_norm_eps ?? 1e-6),
    ropeTheta: ropeTheta(c, fail),
    maxPositions: int("max_position_embeddings", 2048),
    tieWordEmbeddings: bool("tie_word_embeddings", false),
    qkvBias: modelType === "qwen2" || attentionBias,
    oBias: modelType === "llama" && attentionBias,
    mlpBias: modelType === "llama" && bool("mlp_bias", false),
  };
}

/**
 * rope_theta, where transformers ≤ 4.x writes it (top level, with rope_scaling) or where 5.x does
 * (rope_parameters.rope_theta, with rope_type). Scaled variants (llama3, yarn, linear, dynamic) change the
 * frequencies and are refused until built.
 */
function ropeTheta(c: Json, fail: (field: string, message: string) => Error): number {
  const params = c.rope_parameters as Json | undefined | null;
  if (params) {
    const type = params.rope_type ?? "default";
    if (type !== "default") throw fail("rope_parameters.rope_type", `is ${JSON.stringify(type)}; only "default" rotary embeddings are built`);
    const theta = params.rope_theta ?? 10000;
    if (typeof theta !== "number" || !(theta > 0)) throw fail("rope_parameters.rope_theta", `is ${JSON.stringify(theta)}, not a positive number`);
    return theta;
  }
  const scaling = c.rope_scaling as Json | undefined | null;
  if (scaling) {
    const type = scaling.rope_type ?? scaling.type;
    if (type !== "default") throw fail("rope_scaling", `asks for ${JSON.stringify(type)} scaling; only unscaled rotary embeddings are built`);
  }
  const theta = c.rope_theta ?? 10000;
  if (typeof theta !== "number" || !(theta > 0)) throw fail("rope_theta", `is ${JSON.stringify(theta)}, not a positive number`);
  return theta;
}
