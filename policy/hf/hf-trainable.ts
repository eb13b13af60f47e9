// A LlamaPolicy as the learner's TrainablePolicy, over its tokenizer's ids only. Published models pad the
// output head past the tokenizer (hf-token-policy.ts); the rollouts sample over the first `size` logits,
// so the learner's log-probs, entropy and KL are taken over the same columns — otherwise the PPO ratio
// would compare two different distributions. With LoRA attached, its weights (what checkpoints and the KL
// reference hold) are the adapters and the value head alone: the loaded weights never change, and the
// model directory holds them.
import type { NamedTensor } from "../../core/weights-codec.ts";
import { tf } from "../backend.ts";
import type { Decoder } from "../model.ts";
import type { TrainablePolicy } from "../trainable-policy.ts";
import { tokenPolicyFor } from "./hf-token-policy.ts";
import { VALUE_BIAS, VALUE_WEIGHT } from "./llama-params.ts";
import type { LlamaPolicy } from "./llama-model.ts";

export class HfTrainable implements TrainablePolicy {
  constructor(
    readonly model: LlamaPolicy,
    /** The tokenizer's ids: the logits' columns kept. */
    readonly size: number,
  ) {
    if (size > model.vocabSize)
      throw new Error(`tokenizer has ${size} ids, more than the model's vocab_size ${model.vocabSize}: ids past ${model.vocabSize - 1} have no output row`);
  }

  /** TRL's names (AutoModelForCausalLMWithValueHead's v_head.summary). */
  readonly valueHeadParameters = [VALUE_WEIGHT, VALUE_BIAS] as const;

  get params(): Map<string, tf.Variable> {
    return this.model.params;
  }

  get variables(): tf.Variable[] {
    return this.model.variables;
  }

  /** logits [P, V] → [P, size]. */
  private cut(logits: tf.Tensor2D): tf.Tensor2D {
    return this.size === this.model.vocabSize ? logits : tf.slice(logits, [0, 0], [-1, this.size]);
  }

  forward(ids: tf.Tensor2D): { logits: tf.Tensor3D; values: tf.Tensor2D } {
    const { logits, values } = this.model.forward(ids);
    return { logits: this.size === this.model.vocabSize ? logits : tf.slice(logits, [0, 0, 0], [-1, -1, this.size]), values };
  }

  headsAt(ids: tf.Tensor2D, positions: Int32Array): { logits: tf.Tensor2D; values: tf.Tensor1D } {
    const { logits, values } = this.model.headsAt(ids, positions);
    return { logits: this.cut(logits), values };
  }

  logitsAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor2D {
    return this.cut(this.model.logitsAt(ids, positions));
  }

  valuesAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor1D {
    return this.model.valuesAt(ids, positions);
  }

  featuresAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor2D {
    return this.model.featuresAt(ids, positions);
  }

  setValueHead(w: Float32Array, b: number): void {
    this.model.setValueHead(w, b);
  }

  exportWeights(): Promise<NamedTensor[]> {
    return this.model.loraSpec ? this.model.exportAdapters() : this.model.exportWeights();
  }

  importWeights(weights: NamedTensor[]): void {
    if (this.model.loraSpec) importTrainable(this.model, weights);
    else this.model.importWeights(weights);
  }

  parameterCount(): number {
    return this.model.parameterCount();
  }

  decoder(contexts: Int32Array[]): Decoder {
    return tokenPolicyFor(this.model, this.size).decoder(contexts);
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** With LoRA: `weights` are exactly the trainable variables (adapters, value head), each checked before any is assigned. */
function importTrainable(model: LlamaPolicy, weights: NamedTensor[]): void {
  const trainable = [...model.params].filter(([, v]) => v.trainable);
  const byName = new Map(weights.map((w) => [w.name, w]));
  for (const [name, v] of trainable) {
    const w = byName.get(name);
    if (!w) throw new Error(`weights: missing LoRA parameter ${name}`);
    if (w.shape.join("x") !== v.shape.join("x")) throw new Error(`weights: parameter ${name} has shape [${w.shape}], the model's is [${v.shape}]`);
  }
  const extra = weights.filter((w) => !trainable.some(([name]) => name === w.name));
  if (extra.length > 0) throw new Error(`weights: ${extra[0].name} is not a LoRA parameter of this model (weights of a full fine-tune?)`);
  for (const [name, v] of trainable) {
    const w = byName.get(name)!;
    tf.tidy(() => v.assign(tf.tensor(w.data, w.shape)));
  }
}
