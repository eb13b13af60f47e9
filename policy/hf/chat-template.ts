// A model's chat template (a Jinja template in tokenizer_config.json's chat_template, or in
// chat_template.jinja beside it) rendered with @huggingface/jinja, the implementation transformers.js
// uses: the conversation becomes the exact text the model was trained to read, special tokens included.
import { Template } from "@huggingface/jinja";

export interface ChatMessage {
  role: string;
  content: string;
}

export interface RenderOptions {
  /** End with the header of the assistant's turn (what the model continues from). */
  addGenerationPrompt?: boolean;
}

export class ChatTemplate {
  private readonly template: Template;

  /**
   * `source` is the Jinja text; `specialTokens` (bos_token, eos_token …) are the variables chat templates
   * read besides the messages; `where` names the template in errors.
   */
  constructor(
    source: string,
    private readonly specialTokens: Record<string, string>,
    private readonly where: string,
  ) {
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new Error(`${where}: the chat template does not parse (${(err as Error).message})`);
    }
  }

  /** The conversation as the model's text. A template's raise_exception (a role it refuses, say) is an error naming it. */
  render(messages: ChatMessage[], opts: RenderOptions = {}): string {
    try {
      return this.template.render({ ...this.specialTokens, messages, add_generation_prompt: opts.addGenerationPrompt ?? false });
    } catch (err) {
      throw new Error(`${this.where}: rendering the chat template failed (${(err as Error).message})`);
    }
  }
}

/**
 * The template text tokenizer_config.json names: a string, or a list of named templates of which
 * transformers takes "default". A chat_template.jinja file (`fileText`), which newer transformers writes
 * instead, wins. undefined when there is none.
 */
export function chatTemplateSource(tokenizerConfig: Record<string, unknown>, fileText: string | undefined, where: string): string | undefined {
  if (fileText !== undefined) return fileText;
  const value = tokenizerConfig.chat_template;
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (Array.isArray(value)) {
    const named = value.find((t) => (t as { name?: unknown })?.name === "default") as { template?: unknown } | undefined;
    if (typeof named?.template === "string") return named.template;
    throw new Error(`${where}: chat_template is a list without a "default" template`);
  }
  throw new Error(`${where}: chat_template is ${typeof value}, not a string or a list of named templates`);
}

/** tokenizer_config's special tokens as template variables: strings, or {content} as older configs write them. */
export function specialTokenVariables(tokenizerConfig: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of ["bos_token", "eos_token", "pad_token", "unk_token"]) {
    const v = tokenizerConfig[key];
    const content = typeof v === "string" ? v : (v as { content?: unknown } | null)?.content;
    if (typeof content === "string") out[key] = content;
  }
  return out;
}
