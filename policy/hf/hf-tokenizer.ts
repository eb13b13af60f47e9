// A model's own tokenizer from its tokenizer.json (and tokenizer_config.json), through Hugging Face's
// tokenizers.js (@huggingface/tokenizers, pure JS: the same on wasm and native backends): BPE, byte-level
// or not, with the added and special tokens the model was trained with. Token ids go from here to the
// model and back unchanged; nothing downstream re-tokenises text (docs/algorithm.md: token in, token out).
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { type ChatMessage, ChatTemplate, chatTemplateSource, type RenderOptions, specialTokenVariables } from "./chat-template.ts";

export const TOKENIZER_JSON = "tokenizer.json";
export const TOKENIZER_CONFIG = "tokenizer_config.json";
export const CHAT_TEMPLATE_FILE = "chat_template.jinja";

type Json = Record<string, unknown>;

export interface EncodeOptions {
  /** Add what the post-processor adds (a BOS, say); false by default: contexts are assembled by the caller. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave special tokens (<|im_end|> …) out of the text. */
  skipSpecialTokens?: boolean;
}

export class HfTokenizer {
  private readonly tokenizer: Tokenizer;
  /** Vocabulary size, added tokens included: one more than the largest id. */
  readonly size: number;
  /** tokenizer_config's eos_token, bos_token and pad_token, as ids (absent when unset or unknown). */
  readonly eosId: number | undefined;
  readonly bosId: number | undefined;
  readonly padId: number | undefined;
  /** tokenizer_config's clean_up_tokenization_spaces (false when unset: decoded text is what the tokens spell). */
  private readonly cleanUpSpaces: boolean;
  /** The model's chat template, when it has one. */
  readonly chatTemplate: ChatTemplate | undefined;

  /**
   * `source` (a path) names the tokenizer in errors; `chatTemplateFile` is the text of a chat_template.jinja
   * beside it, which wins over tokenizer_config's chat_template (as in transformers).
   */
  constructor(tokenizerJson: unknown, tokenizerConfig: unknown, source = TOKENIZER_JSON, chatTemplateFile?: string) {
    const config = (tokenizerConfig ?? {}) as Json;
    try {
      this.tokenizer = new Tokenizer(tokenizerJson as object, config);
    } catch (err) {
      throw new Error(`${source}: not a tokenizer tokenizers.js can build (${(err as Error).message})`);
    }
    let maxId = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.size = maxId + 1;
    this.eosId = this.idOfSpecial(config.eos_token);
    this.bosId = this.idOfSpecial(config.bos_token);
    this.padId = this.idOfSpecial(config.pad_token);
    this.cleanUpSpaces = config.clean_up_tokenization_spaces === true;
    const template = chatTemplateSource(config, chatTemplateFile, source);
    this.chatTemplate = template === undefined ? undefined : new ChatTemplate(template, specialTokenVariables(config), source);
  }

  /** Reads tokenizer.json (required) and tokenizer_config.json (optional) from a model directory. */
  static async fromDir(dir: string): Promise<HfTokenizer> {
    const jsonPath = join(dir, TOKENIZER_JSON);
    if (!existsSync(jsonPath)) throw new Error(`${dir}: no ${TOKENIZER_JSON} (the fast-tokenizer file; a vocab.json/merges.txt pair alone is not read)`);
    const configPath = join(dir, TOKENIZER_CONFIG);
    const config = existsSync(configPath) ? await readJson(configPath) : {};
    const templatePath = join(dir, CHAT_TEMPLATE_FILE);
    const templateFile = existsSync(templatePath) ? await readFile(templatePath, "utf8") : undefined;
    return new HfTokenizer(await readJson(jsonPath), config, jsonPath, templateFile);
  }

  /**
   * The ids of a conversation rendered with the model's chat template, as transformers' apply_chat_template
   * gives them (the rendered text encoded without the post-processor's specials: the template writes them).
   */
  applyChatTemplate(messages: ChatMessage[], opts: RenderOptions = {}): Int32Array {
    if (!this.chatTemplate) throw new Error("tokenizer: this model has no chat template (tokenizer_config.json chat_template, or chat_template.jinja)");
    return this.encode(this.chatTemplate.render(messages, opts));
  }

  /** The ids of `text`. */
  encode(text: string, opts: EncodeOptions = {}): Int32Array {
    return Int32Array.from(this.tokenizer.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }).ids);
  }

  /** The text of `ids` (empty for none); an id outside the vocabulary is an error, not an unknown token. */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    if (ids.length === 0) return "";
    const list = Array.from(ids);
    for (const id of list) if (!Number.isInteger(id) || id < 0 || id >= this.size) throw new Error(`tokenizer: id ${id} is not in [0, ${this.size - 1}]`);
    return this.tokenizer.decode(list, { skip_special_tokens: opts.skipSpecialTokens ?? false, clean_up_tokenization_spaces: this.cleanUpSpaces });
  }

  /** The id of one token (a vocabulary entry or an added token, as the vocabulary spells it). */
  tokenId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  /** The vocabulary entry of `id`. */
  token(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /** A special token's id from tokenizer_config's value: a string, or {content} as older configs write it. */
  private idOfSpecial(value: unknown): number | undefined {
    const content = typeof value === "string" ? value : (value as { content?: unknown } | null)?.content;
    return typeof content === "string" ? this.tokenId(content) : undefined;
  }
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: not JSON (${(err as Error).message})`);
  }
}
