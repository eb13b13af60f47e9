// A small byte-level BPE tokenizer.json (the GPT-2 / Llama 3 / Qwen2 kind), built by the tests: every
// byte has a token (so any text round-trips), a handful of merges with ranks that matter, and the added
// tokens of a chat model. Ids: the 256 byte tokens, then one per merge, then the added tokens.

/** GPT-2's bytes_to_unicode: printable bytes stand for themselves, the others map to U+0100 onwards. */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + n++);
  return out;
}

/** Merges in rank order: "e l" ranks after "h e", so "hello" must merge h+e first. */
export const TINY_MERGES = ["h e", "he l", "hel l", "hell o", "Ġ w", "o r", "l d", "Ġw or", "e l", "s e", "se a", "sea r", "sear c", "searc h"];

export const TINY_ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

export function tinyVocabulary(): Map<string, number> {
  const vocab = new Map<string, number>();
  for (const ch of bytesToUnicode()) vocab.set(ch, vocab.size);
  for (const m of TINY_MERGES) vocab.set(m.replace(" ", ""), vocab.size);
  return vocab;
}

/** tokenizer.json as the Rust tokenizers library writes it for a byte-level BPE. */
export function tinyTokenizerJson(): Record<string, unknown> {
  const vocab = tinyVocabulary();
  const firstAdded = vocab.size;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: TINY_ADDED.map((content, i) => ({
      id: firstAdded + i,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: false, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocab),
      merges: TINY_MERGES.map((m) => m.split(" ")),
    },
  };
}

export function tinyTokenizerConfig(): Record<string, unknown> {
  return {
    bos_token: null,
    eos_token: "<|im_end|>",
    pad_token: "<|endoftext|>",
    clean_up_tokenization_spaces: false,
    model_max_length: 64,
    tokenizer_class: "Qwen2Tokenizer",
  };
}
