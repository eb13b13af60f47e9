// A model's chat template (policy/hf/chat-template.ts through @huggingface/jinja): a Qwen2-style ChatML
// template the test writes renders the conversation to the text written out here by hand, the tokenizer
// turns it into the ids of its pieces (special tokens as single ids), and the places transformers looks
// for a template (tokenizer_config's string or named list, chat_template.jinja) are read in its order.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ChatTemplate, chatTemplateSource } from "../../policy/hf/chat-template.ts";
import { HfTokenizer } from "../../policy/hf/hf-tokenizer.ts";
import { tinyTokenizerConfig, tinyTokenizerJson } from "../support/tiny-tokenizer.ts";

const root = mkdtempSync(join(tmpdir(), "steppo-hf-chat-"));
after(() => rmSync(root, { recursive: true, force: true }));

/** Qwen2.5's template, cut to messages without tools: a default system turn, ChatML turns, a refused role. */
const CHATML = [
  "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}",
  "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}",
  "{%- for message in messages %}",
  "{%- if message['role'] not in ['system', 'user', 'assistant'] %}{{- raise_exception('unknown role ' + message['role']) }}{%- endif %}",
  "{%- if not (message['role'] == 'system' and loop.first) %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endif %}",
  "{%- endfor %}",
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
].join("");

async function tokenizerWith(config: Record<string, unknown>, templateFile?: string): Promise<HfTokenizer> {
  const dir = mkdtempSync(join(root, "t-"));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tinyTokenizerJson()));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ ...tinyTokenizerConfig(), ...config }));
  if (templateFile !== undefined) writeFileSync(join(dir, "chat_template.jinja"), templateFile);
  return HfTokenizer.fromDir(dir);
}

describe("a chat template", () => {
  const conversation = [
    { role: "user", content: "who directed Koek ?" },
    { role: "assistant", content: "search [ Koek ]" },
    { role: "user", content: "Koek was directed by Krakdeto ." },
  ];

  it("renders a conversation to the model's text, with the generation prompt when asked", async () => {
    const tok = await tokenizerWith({ chat_template: CHATML });
    assert.ok(tok.chatTemplate);
    const text = tok.chatTemplate.render(conversation, { addGenerationPrompt: true });
    assert.equal(
      text,
      "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n" +
        "<|im_start|>user\nwho directed Koek ?<|im_end|>\n" +
        "<|im_start|>assistant\nsearch [ Koek ]<|im_end|>\n" +
        "<|im_start|>user\nKoek was directed by Krakdeto .<|im_end|>\n" +
        "<|im_start|>assistant\n",
    );
    const withSystem = tok.chatTemplate.render([{ role: "system", content: "Answer briefly." }, conversation[0]]);
    assert.equal(withSystem, "<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nwho directed Koek ?<|im_end|>\n");
  });

  it("gives the ids of its pieces: special tokens as single ids, the text between them encoded", async () => {
    const tok = await tokenizerWith({ chat_template: CHATML });
    const ids = [...tok.applyChatTemplate([conversation[0]], { addGenerationPrompt: true })];
    const start = tok.tokenId("<|im_start|>")!;
    const end = tok.tokenId("<|im_end|>")!;
    const enc = (s: string) => [...tok.encode(s)];
    assert.deepEqual(ids, [
      start,
      ...enc("system\nYou are a helpful assistant."),
      end,
      ...enc("\n"),
      start,
      ...enc("user\nwho directed Koek ?"),
      end,
      ...enc("\n"),
      start,
      ...enc("assistant\n"),
    ]);
    assert.equal(tok.decode(ids), tok.chatTemplate!.render([conversation[0]], { addGenerationPrompt: true }));
  });

  it("is found where transformers looks, chat_template.jinja first; its errors name the file", async () => {
    assert.equal(
      chatTemplateSource(
        {
          chat_template: [
            { name: "tool_use", template: "T" },
            { name: "default", template: "D" },
          ],
        },
        undefined,
        "x",
      ),
      "D",
    );
    assert.equal(chatTemplateSource({ chat_template: "C" }, "F", "x"), "F");
    assert.equal(chatTemplateSource({}, undefined, "x"), undefined);
    assert.throws(
      () => chatTemplateSource({ chat_template: [{ name: "tool_use", template: "T" }] }, undefined, "cfg"),
      /cfg: chat_template is a list without a "default"/,
    );
    const fromFile = await tokenizerWith({ chat_template: CHATML }, "{{ eos_token }}|{% for m in messages %}{{ m.content }}{% endfor %}");
    assert.equal(fromFile.chatTemplate!.render([{ role: "user", content: "hi" }]), "<|im_end|>|hi");
    const none = await tokenizerWith({});
    assert.equal(none.chatTemplate, undefined);
    assert.throws(() => none.applyChatTemplate(conversation), /no chat template/);
    assert.throws(() => new ChatTemplate("{% for m in messages %}", {}, "/m/tokenizer.json"), /^Error: \/m\/tokenizer\.json: the chat template does not parse/);
    const tok = await tokenizerWith({ chat_template: CHATML });
    assert.throws(() => tok.chatTemplate!.render([{ role: "tool", content: "x" }]), /rendering the chat template failed.*unknown role tool/);
  });
});
