// A Hugging Face tokenizer as the agent loop's tokenizer (AgentTokenizer). The environment's words become
// text (joined by spaces), the context goes through the model's chat template as one user turn ending in
// the assistant's header (the text the model continues from), and a sampled step's ids decode to the text
// the environment parses. A step ends at the end-of-turn token or where the text completes a stop string
// (the tool call's closing "]"): policy/step-end.ts, the same rule for sampled and demonstrated steps.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { AgentTokenizer } from "../agent-tokenizer.ts";
import { type EndsStep, stepEnd } from "../step-end.ts";
import { CHAT_TEMPLATE_FILE, HfTokenizer, TOKENIZER_CONFIG, TOKENIZER_JSON } from "./hf-tokenizer.ts";

/** The files whose content decides the ids: a checkpoint records their hash. */
const IDENTITY_FILES = [TOKENIZER_JSON, TOKENIZER_CONFIG, CHAT_TEMPLATE_FILE];

export class HfAgentTokenizer implements AgentTokenizer {
  readonly size: number;
  readonly endsStep: EndsStep;

  constructor(
    readonly tokenizer: HfTokenizer,
    readonly stopStrings: readonly string[],
    /** sha256 over the tokenizer files (identityHash). */
    private readonly filesHash: string,
  ) {
    this.size = tokenizer.size;
    const stopIds = tokenizer.eosId === undefined ? [] : [tokenizer.eosId];
    this.endsStep = stepEnd({ stopIds, stopStrings, decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }) });
  }

  static async fromDir(dir: string, stopStrings: readonly string[]): Promise<HfAgentTokenizer> {
    return new HfAgentTokenizer(await HfTokenizer.fromDir(dir), stopStrings, identityHash(dir));
  }

  /**
   * The context as one user turn of the chat template with the assistant's header after it (without a
   * template: the beginning-of-sequence token, where there is one, then the text). Too long, its oldest
   * words are dropped (as the built-in tokenizer drops its oldest tokens) until it fits in `maxLen`.
   */
  encodeContext(words: readonly string[], maxLen: number): Int32Array {
    let kept = words;
    let ids = this.render(kept);
    while (ids.length > maxLen) {
      if (kept.length === 0) throw new Error(`tokenizer: the chat template alone takes ${ids.length} tokens, more than the context budget of ${maxLen}`);
      // Every word is at least one token: dropping as many words as there are tokens too many fits at once, unless
      // the tokenizer merges across the new first word's boundary; the loop covers that.
      kept = kept.slice(Math.min(kept.length, ids.length - maxLen));
      ids = this.render(kept);
    }
    return ids;
  }

  private render(words: readonly string[]): Int32Array {
    const text = words.join(" ");
    const t = this.tokenizer;
    if (t.chatTemplate) return t.applyChatTemplate([{ role: "user", content: text }], { addGenerationPrompt: true });
    const body = t.encode(text);
    if (t.bosId === undefined) return body;
    const out = new Int32Array(body.length + 1);
    out[0] = t.bosId;
    out.set(body, 1);
    return out;
  }

  /**
   * The demonstration's text encoded and cut where a sampled step would have ended (its first stop); a
   * text without a stop gets the end-of-turn token after it, so the model learns to end the step there.
   */
  encodeAction(words: readonly string[], maxTokens: number): Int32Array {
    const ids = Array.from(this.tokenizer.encode(words.join(" ")));
    for (let n = 1; n <= Math.min(ids.length, maxTokens); n++) if (this.endsStep(ids.slice(0, n))) return Int32Array.from(ids.slice(0, n));
    const eos = this.tokenizer.eosId;
    if (eos === undefined) return Int32Array.from(ids.slice(0, maxTokens));
    return Int32Array.from([...ids.slice(0, maxTokens - 1), eos]);
  }

  /** The step's text without special tokens (the end-of-turn), split into the words the environment reads. */
  actionWords(ids: ArrayLike<number>): string[] {
    return words(this.tokenizer.decode(ids, { skipSpecialTokens: true }));
  }

  decode(ids: ArrayLike<number>): string[] {
    return words(this.tokenizer.decode(ids));
  }

  identity(): string[] {
    return ["hf-tokenizer", `sha256:${this.filesHash}`, `stop-strings:${JSON.stringify(this.stopStrings)}`];
  }
}

function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w.length > 0);
}

/** sha256 over the tokenizer files present in `dir`, each named: the same files give the same ids. */
export function identityHash(dir: string): string {
  const h = createHash("sha256");
  for (const name of IDENTITY_FILES) {
    const path = join(dir, name);
    if (!existsSync(path)) continue;
    h.update(`${name}\u0000`);
    h.update(readFileSync(path));
    h.update("\u0000");
  }
  return h.digest("hex");
}
