// Decoding: turning a policy's next-token logits into one agent step's tokens, with their log-probs.
// Shared by the rollout workers (agent loop) and the learner's evaluation, so both decode alike.
import type { Rng } from "../core/rng.ts";
import type { Decoder } from "./model.ts";
import type { EndsStep } from "./step-end.ts";
import { EOS_STEP } from "./tokenizer.ts";

/** What the loop needs from a policy: incremental next-token logits for a batch of contexts. */
export interface TokenPolicy {
  readonly vocabSize: number;
  decoder(contexts: Int32Array[]): Decoder;
}

export interface DecodingOptions {
  /** A step ends at <eos-step> (or where `endsStep` says) or after this many tokens. */
  maxStepTokens: number;
  /** Where a step ends before maxStepTokens; by default at the built-in vocabulary's <eos-step> (step-end.ts builds one for a model's own tokenizer). */
  endsStep?: EndsStep;
  temperature: number;
  /** Greedy decoding (evaluation); sampling otherwise. */
  greedy: boolean;
}

/** A model's decoder sampling over ids [0, vocabSize) (its tokenizer's; a Hugging Face model's decoder is cut to them already). */
export function asTokenPolicy(model: { decoder(contexts: Int32Array[]): Decoder }, vocabSize: number): TokenPolicy {
  return { vocabSize, decoder: (contexts) => model.decoder(contexts) };
}

/** Samples (or argmaxes) one token per row; returns ids and their log-probs under softmax(logits / T). */
export function sampleTokens(
  logits: Float32Array,
  vocabSize: number,
  rows: number,
  temperature: number,
  greedy: boolean,
  rng: Rng,
): { ids: Int32Array; logProbs: Float32Array } {
  const ids = new Int32Array(rows);
  const logProbs = new Float32Array(rows);
  const scaled = new Float64Array(vocabSize);
  for (let r = 0; r < rows; r++) {
    const off = r * vocabSize;
    let max = -Infinity;
    for (let v = 0; v < vocabSize; v++) {
      scaled[v] = logits[off + v] / temperature;
      if (scaled[v] > max) max = scaled[v];
    }
    let z = 0;
    for (let v = 0; v < vocabSize; v++) z += Math.exp(scaled[v] - max);
    const logZ = max + Math.log(z);
    let choice = 0;
    if (greedy) {
      for (let v = 1; v < vocabSize; v++) if (scaled[v] > scaled[choice]) choice = v;
    } else {
      let u = rng.next();
      choice = vocabSize - 1;
      for (let v = 0; v < vocabSize; v++) {
        u -= Math.exp(scaled[v] - logZ);
        if (u < 0) {
          choice = v;
          break;
        }
      }
    }
    ids[r] = choice;
    logProbs[r] = scaled[choice] - logZ;
  }
  return { ids, logProbs };
}

/** Generates one step's action tokens for every context, in one batch. */
export function generateSteps(
  policy: TokenPolicy,
  contexts: Int32Array[],
  opts: DecodingOptions,
  rng: Rng,
): { actionIds: Int32Array; logProbs: Float32Array }[] {
  const actions: number[][] = contexts.map(() => []);
  const logps: number[][] = contexts.map(() => []);
  const finished = new Array<boolean>(contexts.length).fill(false);
  const endsStep = opts.endsStep ?? ((ids: readonly number[]) => ids[ids.length - 1] === EOS_STEP);
  const decoder = policy.decoder(contexts);
  try {
    for (let t = 0; t < opts.maxStepTokens; t++) {
      const { ids, logProbs } = sampleTokens(decoder.logits(), policy.vocabSize, contexts.length, opts.temperature, opts.greedy, rng);
      // Finished rows keep decoding in lockstep (their tokens are discarded): cheaper than re-packing.
      ids.forEach((id, i) => {
        if (finished[i]) return;
        actions[i].push(id);
        logps[i].push(logProbs[i]);
        if (endsStep(actions[i])) finished[i] = true;
      });
      if (finished.every(Boolean) || t === opts.maxStepTokens - 1) break;
      decoder.push(ids);
    }
  } finally {
    decoder.dispose();
  }
  return actions.map((a, i) => ({ actionIds: Int32Array.from(a), logProbs: Float32Array.from(logps[i]) }));
}
