// What the learner's losses read of a policy network, whichever it is (the built-in PolicyModel, a Hugging
// Face LlamaPolicy): its variables by name and its heads at some positions.
import type { tf } from "./backend.ts";

export interface PolicyNetwork {
  /** Every variable by name: the names checkpoints, the weight store and the optimiser's state use. */
  readonly params: Map<string, tf.Variable>;
  /** The variables an update changes: all of params' values, or fewer (LoRA freezes the loaded weights). */
  readonly variables: tf.Variable[];
  /** Logits [P, V] and values [P] at flat positions b·T + t of ids [B, T]. */
  headsAt(ids: tf.Tensor2D, positions: Int32Array): { logits: tf.Tensor2D; values: tf.Tensor1D };
  /** Logits [P, V] alone at the same positions. */
  logitsAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor2D;
  /** Values [P] alone at the same positions (a separate critic reads no logits). */
  valuesAt(ids: tf.Tensor2D, positions: Int32Array): tf.Tensor1D;
}

/**
 * The params name of each variable, by the variable's tfjs name (what tf.variableGrads keys its gradients
 * by). By name, not by position: `variables` may be a subset of `params` in another order.
 */
export function parameterNames(model: PolicyNetwork): Map<string, string> {
  return new Map([...model.params].map(([name, v]) => [v.name, name]));
}
