// Word-level tokenizer over the environment's grammar plus specials. Saved with every checkpoint so a
// resumed or distributed run maps words to the same ids.
import type { AgentTokenizer } from "./agent-tokenizer.ts";

export const SPECIALS = ["<pad>", "<bos>", "<eos-step>", "<obs>", "</obs>", "<unk>"] as const;
export const PAD = 0;
export const BOS = 1;
export const EOS_STEP = 2;
export const UNK = 5;

export class Tokenizer implements AgentTokenizer {
  readonly words: readonly string[];
  private readonly ids: Map<string, number>;

  /** `vocabulary` is the environment's word list; specials are prepended and duplicates dropped. */
  constructor(vocabulary: readonly string[]) {
    const words: string[] = [...SPECIALS];
    const seen = new Set<string>(words);
    for (const w of vocabulary) {
      if (!seen.has(w)) {
        seen.add(w);
        words.push(w);
      }
    }
    this.words = words;
    this.ids = new Map(words.map((w, i) => [w, i]));
  }

  get size(): number {
    return this.words.length;
  }

  id(word: string): number {
    return this.ids.get(word) ?? UNK;
  }

  encode(words: readonly string[]): Int32Array {
    return Int32Array.from(words, (w) => this.id(w));
  }

  decode(ids: ArrayLike<number>): string[] {
    return Array.from(ids, (i) => this.words[i] ?? "<unk>");
  }

  /** Context ids as the model reads them: <bos> then the words, keeping the newest `maxLen` tokens. */
  encodeContext(words: readonly string[], maxLen: number): Int32Array {
    const body = this.encode(words);
    const keep = Math.max(0, maxLen - 1);
    const tail = body.length > keep ? body.subarray(body.length - keep) : body;
    const out = new Int32Array(tail.length + 1);
    out[0] = BOS;
    out.set(tail, 1);
    return out;
  }

  /** A demonstrated action: its words (cut to leave room), then <eos-step>, where a sampled step ends. */
  encodeAction(words: readonly string[], maxTokens: number): Int32Array {
    const body = this.encode(words).subarray(0, maxTokens - 1);
    const ids = new Int32Array(body.length + 1);
    ids.set(body);
    ids[body.length] = EOS_STEP;
    return ids;
  }

  actionWords(ids: ArrayLike<number>): string[] {
    return this.decode(ids).filter((w) => w !== "<eos-step>");
  }

  /** The word list itself: a checkpoint maps words to the same ids only under the same list. */
  identity(): string[] {
    return this.toJSON();
  }

  toJSON(): string[] {
    return [...this.words];
  }

  static fromJSON(words: string[]): Tokenizer {
    for (let i = 0; i < SPECIALS.length; i++) {
      if (words[i] !== SPECIALS[i]) throw new Error(`tokenizer: entry ${i} is "${words[i]}", expected special "${SPECIALS[i]}"`);
    }
    return new Tokenizer(words.slice(SPECIALS.length));
  }
}
