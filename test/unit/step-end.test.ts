// Where a step ends in a model's own tokenizer (policy/step-end.ts): at a stop token, or at the token that
// completes a stop string, even one cut across tokens or ending inside one; and one agent step generated
// end to end with a tiny Hugging Face model: the chat template's context, the cached decoder, sampling,
// the step ended by the rule, the action ids kept exactly as sampled.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Rng } from "../../core/rng.ts";
import { selectBackend } from "../../policy/backend.ts";
import { generateSteps } from "../../policy/decoding.ts";
import { loadHfPolicy } from "../../policy/hf/hf-checkpoint.ts";
import { tokenPolicyFor } from "../../policy/hf/hf-token-policy.ts";
import { HfTokenizer } from "../../policy/hf/hf-tokenizer.ts";
import { stepEnd } from "../../policy/step-end.ts";
import { TINY_QWEN2, writeTinyModel } from "../support/tiny-hf-model.ts";
import { tinyTokenizerConfig, tinyTokenizerJson } from "../support/tiny-tokenizer.ts";

const root = mkdtempSync(join(tmpdir(), "steppo-step-end-"));
after(() => rmSync(root, { recursive: true, force: true }));
let tok: HfTokenizer;

const CHATML =
  "{%- for message in messages %}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor %}" +
  "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

before(async () => {
  await selectBackend("wasm", () => {});
  writeFileSync(join(root, "tokenizer.json"), JSON.stringify(tinyTokenizerJson()));
  writeFileSync(join(root, "tokenizer_config.json"), JSON.stringify({ ...tinyTokenizerConfig(), chat_template: CHATML }));
  tok = await HfTokenizer.fromDir(root);
});

const decode = (ids: number[]) => tok.decode(ids);

describe("a step's end in a model's own tokenizer", () => {
  it("is a stop token, or the token completing a stop string (however the string is cut into tokens)", () => {
    const ends = stepEnd({ stopIds: [tok.eosId!], stopStrings: ["]", "</tool_call>"], decode });
    const ids = [...tok.encode("search [ Koek ] then")];
    // The first prefix whose text holds "]" is where the step ends: at that token, not before or after.
    const at = ids.findIndex((_, i) => decode(ids.slice(0, i + 1)).includes("]"));
    assert.ok(at > 0);
    for (let i = 1; i <= ids.length; i++) assert.equal(ends(ids.slice(0, i)), i === at + 1, `after ${i} tokens`);
    // "</tool_call>" is a dozen byte tokens here: it ends the step at its last character's token.
    const call = [...tok.encode('x <tool_call>{"name": "search"}</tool_call> y')];
    const callEnd = call.findIndex((_, i) => decode(call.slice(0, i + 1)).includes("</tool_call>"));
    assert.ok(callEnd > 20, "a long stop string spans many tokens");
    assert.equal(call.filter((_, i) => ends(call.slice(0, i + 1))).length, 1);
    assert.ok(ends(call.slice(0, callEnd + 1)));
    // The end-of-turn token ends it on its own.
    assert.ok(ends([...tok.encode("hello"), tok.eosId!]));
    assert.ok(!ends([]));
    assert.throws(() => stepEnd({ stopIds: [], stopStrings: [""], decode }), /empty stop string/);
  });

  it("is found inside a token's text: the step keeps that whole token", () => {
    // "search" is one token; with stop string "arc" it ends the step although "arc" is inside it.
    const ends = stepEnd({ stopIds: [], stopStrings: ["arc"], decode });
    const ids = [...tok.encode("search")];
    assert.equal(ids.length, 1);
    assert.ok(ends(ids));
  });

  it("ends the steps a tiny Hugging Face model samples from a chat-templated context", async () => {
    const dir = join(root, "model");
    // Padded past the tokenizer, as published models are.
    await writeTinyModel(dir, { ...TINY_QWEN2, valueHead: false, vocabSize: tok.size + 13, dtype: "BF16", seed: 5 });
    const { model } = await loadHfPolicy(dir);
    try {
      const questions = ["who directed Koek ?", "when was Krakdeto born ?", "where is Nurb ?", "who founded Vell ?", "search", "hello world", "o", "or"];
      const contexts = questions.map((q) => tok.applyChatTemplate([{ role: "user", content: q }], { addGenerationPrompt: true }));
      // "o" is in several of the vocabulary's tokens: some sampled steps end at it, others run to the budget.
      const ends = stepEnd({ stopIds: [tok.eosId!], stopStrings: ["o"], decode });
      const policy = tokenPolicyFor(model, tok.size);
      assert.equal(policy.vocabSize, tok.size);
      const steps = generateSteps(policy, contexts, { maxStepTokens: 12, temperature: 1, greedy: false, endsStep: ends }, new Rng(3));
      let stopped = 0;
      for (const { actionIds, logProbs } of steps) {
        const ids = [...actionIds];
        assert.equal(logProbs.length, ids.length);
        assert.ok(logProbs.every((lp) => lp <= 0 && Number.isFinite(lp)));
        assert.ok(
          ids.every((id) => id < tok.size),
          "sampled within the tokenizer's ids, never a padding row",
        );
        // No earlier prefix ended the step: it ends at the first stop, or at the budget with none.
        for (let i = 1; i < ids.length; i++) assert.ok(!ends(ids.slice(0, i)), `a stop before token ${i}`);
        if (ends(ids)) stopped++;
        else assert.equal(ids.length, 12);
        // Token in, token out: the text's own tokens need not be these, but these ids are what the step holds.
        assert.equal(typeof tok.decode(ids), "string");
      }
      assert.ok(stopped > 0 && stopped < steps.length, `${stopped} of ${steps.length} steps stopped early: both cases exercised`);
      // The cut logits are the model's own first columns; a tokenizer larger than the head is refused.
      const full = model.decoder([contexts[0]]);
      const cut = policy.decoder([contexts[0]]);
      assert.deepEqual(cut.logits(), full.logits().subarray(0, tok.size));
      full.dispose();
      cut.dispose();
      assert.throws(() => tokenPolicyFor(model, model.vocabSize + 1), /more than the model's vocab_size/);
      assert.throws(() => policy.decoder([Int32Array.from([tok.size])]), /not a token of the tokenizer/);
    } finally {
      model.dispose();
    }
  });
});
