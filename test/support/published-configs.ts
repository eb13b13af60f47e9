// Shapes of published models the tests reason about, written once so the config parser's test and the
// memory estimate's test agree on what "Qwen2.5-0.5B" is.
import type { LlamaConfig } from "../../policy/hf/llama-config.ts";

// Qwen2.5-0.5B(-Instruct), as its config.json gives it: 24 layers, GQA 14:2 with heads of 64, tied
// embeddings, q/k/v bias only, a vocabulary padded to 151936.
export const QWEN25_05B: LlamaConfig = {
  modelType: "qwen2",
  vocabSize: 151936,
  hiddenSize: 896,
  intermediateSize: 4864,
  layers: 24,
  heads: 14,
  kvHeads: 2,
  headDim: 64,
  rmsNormEps: 1e-6,
  ropeTheta: 1e6,
  maxPositions: 32768,
  tieWordEmbeddings: true,
  qkvBias: true,
  oBias: false,
  mlpBias: false,
};
