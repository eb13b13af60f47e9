// What a Hugging Face policy needs in memory, printed when a learner or a rollout worker loads it, so that a
// user sizes the pods (resources.limits) before a run dies of it. Everything is float32 in memory whatever
// the files' dtype. The biggest terms only, as bytes:
//   weights          4 · N                       (N parameters, LoRA adapters and the value head included)
//   KV cache         4 · 2 · layers · kvHeads · headDim · contextLength   per episode decoded at once
//   Adam + gradient  4 · 3 · trainable           (the two moments and one gradient pass; LoRA: adapters + value head)
//   KL reference     4 · N                       (klCoef > 0: a second copy of the model)
//   separate critic  4 · N + 4 · 3 · trainable   (model.critic: separate: its own copy, trained by its own Adam)
//   logits           4 · 2 · minibatchSteps · maxStepTokens · vocab   (the largest activation and its gradient)
// A worker holds the weights and its episodes' KV caches; the learner the rest, and the KV caches of the
// episodes it evaluates at once.
// Activations besides the logits are left out: they scale with minibatchSteps × contextLength × hidden size
// and are small beside these for the models this runs.
import type { LlamaConfig } from "./llama-config.ts";

export interface MemoryInputs {
  config: LlamaConfig;
  /** Every parameter the model holds: base weights, LoRA adapters, value head. */
  parameters: number;
  /** The parameters the updates change (all of them, or with LoRA the adapters and the value head). */
  trainable: number;
  contextLength: number;
  /** Episodes a rollout worker decodes together: at most one update's (rollout.episodesPerUpdate). */
  episodesDecoded: number;
  /** Episodes the learner decodes together when it evaluates. */
  evaluationEpisodes: number;
  minibatchSteps: number;
  maxStepTokens: number;
  klReference: boolean;
  separateCritic: boolean;
}

export interface MemoryEstimate {
  weights: number;
  kvCachePerEpisode: number;
  /** A rollout worker: the weights and the KV cache of `episodesDecoded` episodes. */
  worker: number;
  optimizer: number;
  reference: number;
  critic: number;
  logits: number;
  /**
   * The learner: the weights, Adam and a gradient, the reference and the critic where asked for, the logits,
   * and the KV cache of an evaluation's episodes (the embedded runtime adds a worker's KV cache to this).
   */
  learner: number;
}

const F32 = 4;

export function hfMemoryEstimate(m: MemoryInputs): MemoryEstimate {
  const c = m.config;
  const weights = F32 * m.parameters;
  const kvCachePerEpisode = F32 * 2 * c.layers * c.kvHeads * c.headDim * m.contextLength;
  const optimizer = F32 * 3 * m.trainable;
  const reference = m.klReference ? weights : 0;
  const critic = m.separateCritic ? weights + optimizer : 0;
  const logits = F32 * 2 * m.minibatchSteps * m.maxStepTokens * c.vocabSize;
  return {
    weights,
    kvCachePerEpisode,
    worker: weights + kvCachePerEpisode * m.episodesDecoded,
    optimizer,
    reference,
    critic,
    logits,
    learner: weights + optimizer + reference + critic + logits + kvCachePerEpisode * m.evaluationEpisodes,
  };
}

/** Bytes as MiB or GiB, for the log. */
export function formatBytes(bytes: number): string {
  const mib = bytes / 2 ** 20;
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GiB` : `${mib.toFixed(mib < 10 ? 2 : 0)} MiB`;
}

/** The estimate as the one log line a learner and a worker print at start. */
export function memoryLine(m: MemoryInputs, e = hfMemoryEstimate(m)): string {
  const parts = [
    `weights ${formatBytes(e.weights)}`,
    `Adam and a gradient ${formatBytes(e.optimizer)}`,
    ...(e.reference > 0 ? [`KL reference ${formatBytes(e.reference)}`] : []),
    ...(e.critic > 0 ? [`separate critic ${formatBytes(e.critic)}`] : []),
    `logits ${formatBytes(e.logits)} (${m.minibatchSteps} steps × ${m.maxStepTokens} tokens × ${m.config.vocabSize})`,
    `KV cache of ${m.evaluationEpisodes} evaluation episodes ${formatBytes(e.kvCachePerEpisode * m.evaluationEpisodes)}`,
  ];
  return (
    `memory (float32, before other activations): a rollout worker ~${formatBytes(e.worker)} (weights ${formatBytes(e.weights)}, ` +
    `KV cache ${formatBytes(e.kvCachePerEpisode)} an episode at ${m.contextLength} positions × ${m.episodesDecoded} episodes); ` +
    `the learner ~${formatBytes(e.learner)} (${parts.join(", ")})`
  );
}
