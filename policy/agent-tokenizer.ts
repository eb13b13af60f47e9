// What the agent loop, the demonstrations, evaluation and checkpoints need of a tokenizer, whichever the
// policy reads: the built-in word-level vocabulary (tokenizer.ts) or a Hugging Face model's own tokenizer
// (hf/hf-agent-tokenizer.ts). Environments speak words; this is where words become the model's ids and
// sampled ids become the words the environment parses. The ids themselves (context and action) are what a
// trajectory keeps and the learner trains on: token in, token out.
import type { EndsStep } from "./step-end.ts";

export interface AgentTokenizer {
  /** Ids [0, size): what sampling draws from and what intake checks trajectories against. */
  readonly size: number;
  /** The ids of a context the model reads, keeping its newest part within `maxLen` tokens. */
  encodeContext(words: readonly string[], maxLen: number): Int32Array;
  /** A demonstrated action as a sampled step would hold it: cut where the step ends, at most `maxTokens` ids. */
  encodeAction(words: readonly string[], maxTokens: number): Int32Array;
  /** The words of a sampled step that the environment is handed (the step's end marker left out). */
  actionWords(ids: ArrayLike<number>): string[];
  /** Any ids as words, for people to read (episode samples); special tokens kept. */
  decode(ids: ArrayLike<number>): string[];
  /** Where a sampled step ends before maxStepTokens; undefined: at the built-in vocabulary's <eos-step>. */
  readonly endsStep?: EndsStep;
  /** What a checkpoint records of this tokenizer; a resume under another identity is refused. */
  identity(): string[];
}
