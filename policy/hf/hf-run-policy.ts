// A job's Hugging Face model (spec.model.source) made ready for a run: the model and its tokenizer loaded
// from the directory, checked against each other, LoRA adapters attached when spec.model.lora asks, and a
// factory the learner builds its policy and its KL reference with.
import type { ModelSpec } from "../../crds/steppojob.ts";
import type { NamedTensor } from "../../core/weights-codec.ts";
import type { ModelConfig } from "../model.ts";
import type { PolicyFactory } from "../trainable-policy.ts";
import { HfAgentTokenizer } from "./hf-agent-tokenizer.ts";
import { type HfPolicy, loadHfPolicy } from "./hf-checkpoint.ts";
import { modelIdentity } from "./hf-model-identity.ts";
import { HfTrainable } from "./hf-trainable.ts";
import type { LlamaConfig } from "./llama-config.ts";
import { LlamaPolicy } from "./llama-model.ts";
import { freshAdapters, type LoraSpec, loraModules, loraNames } from "./lora.ts";

/** The schema's bound on spec.model.contextLength: a model's own max_position_embeddings is usually far past it. */
const MAX_CONTEXT = 4096;

export interface HfRunPolicy {
  tokenizer: HfAgentTokenizer;
  /** The run's dimensions: vocabSize the tokenizer's ids (what is sampled), dModel the hidden size. */
  config: ModelConfig;
  llamaConfig: LlamaConfig;
  /** The model as loaded (the learner trains this very LlamaPolicy): an export keeps its config.json and dtypes. */
  loaded: HfPolicy;
  lora?: LoraSpec;
  factory: PolicyFactory;
}

export async function loadRunPolicy(
  spec: ModelSpec,
  opts: { stopStrings: readonly string[]; seed: number; log: (line: string) => void },
): Promise<HfRunPolicy> {
  const dir = spec.source;
  if (dir === undefined) throw new Error("spec.model.source is not set");
  const loaded = await loadHfPolicy(dir, opts.log);
  const tokenizer = await HfAgentTokenizer.fromDir(dir, opts.stopStrings);
  const c = loaded.config;
  if (tokenizer.size > c.vocabSize) {
    loaded.model.dispose();
    throw new Error(
      `spec.model.source ${dir}: tokenizer.json has ${tokenizer.size} ids, config.json's vocab_size is ${c.vocabSize} (not this model's tokenizer?)`,
    );
  }
  const contextLength = spec.contextLength ?? Math.min(c.maxPositions, MAX_CONTEXT);
  if (contextLength > c.maxPositions) {
    loaded.model.dispose();
    throw new Error(`spec.model.contextLength ${contextLength} is past ${dir}'s max_position_embeddings ${c.maxPositions}`);
  }
  const lora = spec.lora && { rank: spec.lora.rank, alpha: spec.lora.alpha, targets: spec.lora.targetModules };
  if (lora) loaded.model.attachLora(lora, freshAdapters(c, lora, opts.seed));
  let created = false;
  const primary = new HfTrainable(loaded.model, tokenizer.size);
  const factory: PolicyFactory = {
    identity: once(() => modelIdentity(dir)),
    create: () => {
      if (created) throw new Error("hf policy: the loaded model is the learner's already");
      created = true;
      return primary;
    },
    fromWeights: (weights) => {
      const model = new LlamaPolicy(c, baseTensors(loaded.model, weights, lora !== undefined));
      if (lora) model.attachLora(lora, adapterTensors(weights, lora, c));
      const copy = new HfTrainable(model, tokenizer.size);
      copy.importWeights(weights);
      return copy;
    },
  };
  const config: ModelConfig = { vocabSize: tokenizer.size, dModel: c.hiddenSize, layers: c.layers, heads: c.heads, contextLength };
  return { tokenizer, config, llamaConfig: c, loaded, lora, factory };
}

/**
 * The base weights a copy is built on: the weights given (a full fine-tune's), or with LoRA the primary
 * model's frozen ones, which no update changes (the weights given are its adapters and value head).
 */
function baseTensors(primary: LlamaPolicy, weights: NamedTensor[], lora: boolean): Map<string, NamedTensor> {
  if (!lora) return new Map(weights.map((w) => [w.name, w]));
  const out = new Map<string, NamedTensor>();
  for (const [name, v] of primary.params) out.set(name, { name, shape: [...v.shape], data: v.dataSync() as Float32Array });
  return out;
}

/** The adapter tensors among `weights` (PEFT names), for attachLora. */
function adapterTensors(weights: NamedTensor[], lora: LoraSpec, c: LlamaConfig): NamedTensor[] {
  const names = new Set(loraModules(c, lora).flatMap((m) => Object.values(loraNames(m.module))));
  return weights.filter((w) => names.has(w.name));
}

/** `f`'s promise, made on the first call and shared by every later one. */
function once<T>(f: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= f();
    return made;
  };
}
