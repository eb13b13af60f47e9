// A policy directory in the Hugging Face layout — config.json, model.safetensors (or shards with their
// index), the tokenizer files — loaded into a LlamaPolicy and exported back the same way. The value head
// travels in the same safetensors files under TRL's names; a model without one starts with V ≡ 0.
import { copyFile, mkdir, readFile, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type LlamaConfig, parseLlamaConfig } from "./llama-config.ts";
import { LlamaPolicy } from "./llama-model.ts";
import { LM_HEAD, llamaParameterShapes, VALUE_BIAS, VALUE_WEIGHT } from "./llama-params.ts";
import type { FloatDtype, StoredTensor } from "./safetensors.ts";
import { readTensorsDir, writeTensorsDir } from "./safetensors-dir.ts";

export const CONFIG_FILE = "config.json";

/** Files beside the weights that an export copies over unchanged (those present). */
export const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "chat_template.jinja"];

export interface HfPolicy {
  model: LlamaPolicy;
  config: LlamaConfig;
  /** config.json as read: written back unchanged on export (fields this code does not read included). */
  rawConfig: Record<string, unknown>;
  /** The dtype each tensor was stored in: an export writes it back alike. */
  dtypes: Map<string, FloatDtype>;
}

/** Tensors some checkpoints carry that are not parameters: older Llama checkpoints store RoPE's buffer. */
const NOT_PARAMETERS = /\.rotary_emb\.inv_freq$/;

/** Loads the model in `dir`; unknown tensors (another architecture's) are refused by name. */
export async function loadHfPolicy(dir: string, log: (line: string) => void = () => {}): Promise<HfPolicy> {
  const configPath = join(dir, CONFIG_FILE);
  if (!existsSync(configPath)) throw new Error(`${dir}: no ${CONFIG_FILE} (a Hugging Face model directory has one)`);
  let rawConfig: Record<string, unknown>;
  try {
    rawConfig = JSON.parse(await readFile(configPath, "utf8"));
  } catch (err) {
    throw new Error(`${configPath}: not JSON (${(err as Error).message})`);
  }
  const config = parseLlamaConfig(rawConfig, configPath);
  const stored = await readTensorsDir(dir);
  for (const name of [...stored.keys()]) if (NOT_PARAMETERS.test(name)) stored.delete(name);
  // Tied embeddings: some checkpoints also store lm_head (a copy of the embeddings); transformers ignores it.
  if (config.tieWordEmbeddings) stored.delete(LM_HEAD);
  if (!stored.has(VALUE_WEIGHT) && !stored.has(VALUE_BIAS)) {
    log(`${dir}: no value head (${VALUE_WEIGHT}); it starts at zero, V ≡ 0`);
    stored.set(VALUE_WEIGHT, { name: VALUE_WEIGHT, shape: [1, config.hiddenSize], dtype: "F32", data: new Float32Array(config.hiddenSize) });
    stored.set(VALUE_BIAS, { name: VALUE_BIAS, shape: [1], dtype: "F32", data: new Float32Array(1) });
  }
  const expected = new Set(llamaParameterShapes(config).map(([name]) => name));
  const unknown = [...stored.keys()].filter((name) => !expected.has(name));
  if (unknown.length > 0) {
    const shown = unknown.slice(0, 5).join(", ") + (unknown.length > 5 ? ` and ${unknown.length - 5} more` : "");
    throw new Error(`${dir}: tensors that a ${config.modelType} model with this config.json has no place for: ${shown}`);
  }
  try {
    const model = new LlamaPolicy(config, stored);
    return { model, config, rawConfig, dtypes: new Map([...stored].map(([name, t]) => [name, t.dtype])) };
  } catch (err) {
    throw new Error(`${dir}: ${(err as Error).message}`);
  }
}

export interface ExportOptions {
  /** Store every tensor in this dtype; by default each in the dtype it was loaded in (new ones in F32). */
  dtype?: FloatDtype;
  /** Shard past this many bytes (transformers' default, 5 GB, when absent). */
  maxShardBytes?: number;
  /** A model directory whose tokenizer files (TOKENIZER_FILES) are copied beside the weights. */
  tokenizerFrom?: string;
}

const TORCH_DTYPES: Record<FloatDtype, string> = { F32: "float32", F16: "float16", BF16: "bfloat16" };

/**
 * config.json as loaded, with its dtype (transformers ≤ 4's torch_dtype, 5's dtype) made the export's when
 * one dtype is forced: transformers loads a model in the dtype its config names.
 */
function configFor(raw: Record<string, unknown>, dtype: FloatDtype | undefined): Record<string, unknown> {
  if (!dtype) return raw;
  const out: Record<string, unknown> = { ...raw, torch_dtype: TORCH_DTYPES[dtype] };
  if ("dtype" in raw) out.dtype = TORCH_DTYPES[dtype];
  return out;
}

/**
 * Writes `policy` to `dir` in the layout it was loaded from: config.json (unchanged but for a forced dtype),
 * the safetensors, the tokenizer files. With LoRA adapters attached, they are merged into the weights,
 * W + (α/r)·B·A: the export is a plain model that loads anywhere the original did (lora-checkpoint.ts saves
 * the adapters alone).
 */
export async function saveHfPolicy(policy: HfPolicy, dir: string, opts: ExportOptions = {}): Promise<void> {
  await mkdir(dir, { recursive: true });
  const weights = policy.model.loraSpec ? await policy.model.mergedWeights() : await policy.model.exportWeights();
  const tensors: StoredTensor[] = weights.map((t) => ({ ...t, dtype: opts.dtype ?? policy.dtypes.get(t.name) ?? "F32" }));
  await writeTensorsDir(dir, tensors, opts.maxShardBytes);
  await writeFile(join(dir, CONFIG_FILE), `${JSON.stringify(configFor(policy.rawConfig, opts.dtype), null, 2)}\n`);
  if (opts.tokenizerFrom) {
    for (const file of TOKENIZER_FILES) {
      const from = join(opts.tokenizerFrom, file);
      if (existsSync(from)) await copyFile(from, join(dir, file));
    }
  }
}
