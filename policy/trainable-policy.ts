// The one policy the learner trains and the workers sample from, whichever model it is: the built-in
// PolicyModel (model.ts) or a Hugging Face causal LM (hf/hf-trainable.ts). The learner's losses read
// PolicyNetwork's part; the critic fit reads features and sets the value head; checkpoints, the KL
// reference and the weight store go through export/import; rollouts decode.
import type { NamedTensor } from "../core/weights-codec.ts";
import type { tf } from "./backend.ts";
import { type Decoder, type ModelConfig, PolicyModel } from "./model.ts";
import type { PolicyNetwork } from "./policy-network.ts";

export interface TrainablePolicy extends PolicyNetwork {
  /** Logits [B, T, V] and values [B, T] at every position of ids [B, T] (the full pass; tests compare against it). */
  forward(ids: tf.Tensor2D): { logits: tf.Tensor3D; values: tf.Tensor2D };
  /** The value head's inputs [P, D] (D the model's width) at flat positions b·T + t of ids [B, T]. */
  featuresAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor2D;
  /** The params names of the value head alone: with a shared trunk, all the critic owns (criticLearningRate applies to them). */
  readonly valueHeadParameters: readonly string[];
  /** Replaces the value head: w [D], bias b (the critic fit's ridge solution). */
  setValueHead(w: Float32Array, b: number): void;
  /** Every variable by params name: what checkpoints and the weight store hold. */
  exportWeights(): Promise<NamedTensor[]>;
  /** Replaces every variable from weights of the same names and shapes. */
  importWeights(weights: NamedTensor[]): void;
  parameterCount(): number;
  /** Incremental next-token logits for a batch of contexts (rollouts, evaluation). */
  decoder(contexts: Int32Array[]): Decoder;
  dispose(): void;
}

/** How the learner makes its policy, and a second one of the same architecture (the KL reference) from weights. */
export interface PolicyFactory {
  create(): TrainablePolicy;
  fromWeights(weights: NamedTensor[]): TrainablePolicy;
  /**
   * What checkpoints record of where the model came from (a Hugging Face directory's hash); none for the
   * built-in model. A function: hashing reads every weight file, and only a learner that checkpoints needs it
   * (the rollout workers build the same factory and never call it).
   */
  identity?: () => Promise<string[]>;
}

/** The built-in transformer of `config`, seeded (model.ts). */
export function builtInFactory(config: ModelConfig, seed: number): PolicyFactory {
  const fromWeights = (weights: NamedTensor[]) => {
    const model = new PolicyModel(config, seed);
    model.importWeights(weights);
    return model;
  };
  return { create: () => new PolicyModel(config, seed), fromWeights };
}
