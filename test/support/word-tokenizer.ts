// A word-level Hugging Face tokenizer over an environment's vocabulary, written by the tests: tokenizer.json
// with a WordPiece model whose vocabulary is whole words (every environment word one token, as BERT's
// tokenizer holds whole words), split on whitespace and decoded with spaces between words; and
// tokenizer_config.json with a ChatML chat template (Qwen2's) whose <|im_end|> ends a turn. A real fast-
// tokenizer file that tokenizers.js and transformers both read, and small: a tiny model over it trains in
// seconds where a byte-level one would spend a token per letter.
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export const WORD_SPECIALS = ["[UNK]", "<|im_start|>", "<|im_end|>"] as const;
const ROLES = ["system", "user", "assistant"];

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The token list: the specials, the chat roles, then `words` (duplicates dropped), in that order. */
export function wordTokens(words: readonly string[]): string[] {
  return [...new Set<string>([...WORD_SPECIALS, ...ROLES, ...words])];
}

export function wordTokenizerJson(words: readonly string[]): Record<string, unknown> {
  const tokens = wordTokens(words);
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: WORD_SPECIALS.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: "WhitespaceSplit" },
    post_processor: null,
    decoder: { type: "WordPiece", prefix: "##", cleanup: false },
    model: {
      type: "WordPiece",
      unk_token: "[UNK]",
      continuing_subword_prefix: "##",
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(tokens.map((t, i) => [t, i])),
    },
  };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir`; returns the number of ids. */
export function writeWordTokenizer(dir: string, words: readonly string[]): number {
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(wordTokenizerJson(words)));
  const config = {
    bos_token: null,
    eos_token: "<|im_end|>",
    pad_token: "[UNK]",
    unk_token: "[UNK]",
    clean_up_tokenization_spaces: false,
    chat_template: CHATML_TEMPLATE,
    tokenizer_class: "PreTrainedTokenizerFast",
  };
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(config, null, 2));
  return wordTokens(words).length;
}
