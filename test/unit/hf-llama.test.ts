// The Llama-family policy (policy/hf/) on tiny random models the test writes itself in the Hugging Face
// layout: the logits and values after loading equal an independent float64 reference forward
// (test/support/llama-reference.ts), for Llama (untied, no bias, bf16) and Qwen2 (tied, q/k/v bias, fp16);
// the gradient flows on wasm; export → load gives back the same tensors, files and logits; and configs or
// checkpoints this code cannot build are refused naming the field or tensor.
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { encodeWeights } from "../../core/weights-codec.ts";
import { selectBackend, tf } from "../../policy/backend.ts";
import { type HfPolicy, loadHfPolicy, saveHfPolicy } from "../../policy/hf/hf-checkpoint.ts";
import { parseLlamaConfig } from "../../policy/hf/llama-config.ts";
import { readSafetensorsHeader } from "../../policy/hf/safetensors.ts";
import { loadPolicyWeights } from "../../policy/policy-weights.ts";
import { INDEX_FILE } from "../../policy/hf/safetensors-dir.ts";
import { type ReferenceConfig, referenceLlama } from "../support/llama-reference.ts";
import { QWEN25_05B } from "../support/published-configs.ts";
import { type TinyModelOptions, tinyConfigJson, writeTinyModel } from "../support/tiny-hf-model.ts";

const root = mkdtempSync(join(tmpdir(), "steppo-hf-llama-"));
let dirs = 0;
const freshDir = () => join(root, `m${++dirs}`);
const loaded: HfPolicy[] = [];
const load = async (dir: string, log?: (line: string) => void) => {
  const p = await loadHfPolicy(dir, log);
  loaded.push(p);
  return p;
};

before(async () => {
  await selectBackend("wasm", () => {});
});
after(() => {
  for (const p of loaded) p.model.dispose();
  rmSync(root, { recursive: true, force: true });
});

const base = { hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 64, vocabSize: 61 };
const LLAMA: TinyModelOptions = { ...base, modelType: "llama", tie: false, dtype: "BF16", seed: 11, valueHead: true };
const QWEN2: TinyModelOptions = { ...base, modelType: "qwen2", tie: true, dtype: "F16", seed: 12, valueHead: true };

function referenceConfig(o: TinyModelOptions): ReferenceConfig {
  return { ...base, hiddenSize: o.hiddenSize, rmsNormEps: 1e-6, ropeTheta: 10000, tie: o.tie };
}

/** Two sequences of different lengths, right-padded with id 0 into [2, 9]. */
const SEQUENCES = [
  [1, 17, 42, 5, 60, 33, 8, 8, 2],
  [1, 3, 59, 21, 44],
];

function padded(): tf.Tensor2D {
  const T = Math.max(...SEQUENCES.map((s) => s.length));
  return tf.tensor2d(
    SEQUENCES.flatMap((s) => [...s, ...new Array(T - s.length).fill(0)]),
    [SEQUENCES.length, T],
    "int32",
  );
}

function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = 2e-4): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= tol * (1 + Math.abs(want[i])), `${what}[${i}]: ${got[i]} vs ${want[i]}`);
}

for (const options of [LLAMA, QWEN2]) {
  describe(`a tiny random ${options.modelType} (${options.tie ? "tied" : "untied"}, ${options.dtype}, GQA ${options.heads}:${options.kvHeads})`, () => {
    it("gives the reference's logits and values at every real position of a padded batch", async () => {
      const dir = freshDir();
      const tensors = await writeTinyModel(dir, options);
      const { model } = await load(dir);
      const byName = new Map(tensors.map((t) => [t.name, t]));
      const { logits, values } = model.forward(padded());
      const T = logits.shape[1];
      const V = options.vocabSize;
      const got = logits.dataSync();
      const gotValues = values.dataSync();
      let spread = 0;
      SEQUENCES.forEach((seq, b) => {
        const ref = referenceLlama(referenceConfig(options), byName, seq);
        for (let t = 0; t < seq.length; t++) {
          assertClose(got.subarray((b * T + t) * V, (b * T + t + 1) * V), ref.logits[t], `${options.modelType} logits row ${b} position ${t}`);
          spread = Math.max(spread, Math.max(...ref.logits[t]) - Math.min(...ref.logits[t]));
        }
        assertClose(gotValues.subarray(b * T, b * T + seq.length), ref.values, `${options.modelType} values row ${b}`);
      });
      // Logits spread over more than the tolerance: a model that ignored its weights would fail.
      assert.ok(spread > 0.5, `logit spread ${spread}`);
      tf.dispose([logits, values]);
    });

    it("is differentiable on wasm: parameter gradients agree with finite differences", async () => {
      const dir = freshDir();
      await writeTinyModel(dir, { ...options, dtype: "F32" });
      const { model } = await load(dir);
      const ids = padded();
      const loss = () => {
        const { logits, values } = model.forward(ids);
        const w = tf.sin(tf.range(1, logits.size + 1).mul(0.37)).reshape(logits.shape);
        return tf.add(tf.sum(tf.mul(logits, w)), tf.sum(tf.mul(values, 0.5))) as tf.Scalar;
      };
      const names = [
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.1.mlp.up_proj.weight",
        "model.layers.0.input_layernorm.weight",
        "model.embed_tokens.weight",
      ];
      const vars = names.map((n) => model.params.get(n)!);
      const { grads } = tf.variableGrads(loss, vars);
      for (const [i, v] of vars.entries()) {
        const g = grads[v.name].dataSync();
        const at = [3, 17, 29].map((k) => (k * 7 + i) % v.size);
        at.push(SEQUENCES[0][2] * options.hiddenSize + 1); // an embedding row the sequences use (others have no gradient)
        for (const j of at.filter((j) => j < v.size)) {
          const orig = v.dataSync().slice();
          const bump = (delta: number) => {
            const x = orig.slice();
            x[j] += delta;
            v.assign(tf.tensor(x, v.shape));
            const l = tf.tidy(() => loss().dataSync()[0]);
            v.assign(tf.tensor(orig, v.shape));
            return l;
          };
          const eps = 1e-2;
          const numeric = (bump(eps) - bump(-eps)) / (2 * eps);
          assert.ok(Math.abs(g[j] - numeric) <= 2e-2 * (1 + Math.abs(numeric)), `${names[i]}[${j}]: gradient ${g[j]} vs finite difference ${numeric}`);
        }
      }
      tf.dispose(Object.values(grads));
    });

    it("exports to the same layout and loads back to the same tensors, dtypes and logits", async () => {
      const dir = freshDir();
      await writeTinyModel(dir, options);
      writeFileSync(join(dir, "tokenizer.json"), '{"version":"1.0"}');
      const first = await load(dir);
      const out = freshDir();
      await saveHfPolicy(first, out, { tokenizerFrom: dir });
      assert.deepEqual(readdirSync(out).sort(), ["config.json", "model.safetensors", "tokenizer.json"]);
      assert.deepEqual(JSON.parse(readFileSync(join(out, "config.json"), "utf8")), tinyConfigJson(options));
      const header = await readSafetensorsHeader(join(out, "model.safetensors"));
      assert.ok(
        header.entries.every((e) => e.dtype === options.dtype),
        "each tensor is stored in the dtype it came in",
      );
      assert.equal(
        header.entries.some((e) => e.name === "lm_head.weight"),
        !options.tie,
      );
      const second = await load(out);
      const a = await first.model.exportWeights();
      const b = await second.model.exportWeights();
      assert.deepEqual(
        b.map((t) => t.name),
        a.map((t) => t.name),
      );
      for (const [i, t] of a.entries()) assert.deepEqual(b[i].data, t.data, t.name);
      const ids = padded();
      assert.deepEqual(second.model.forward(ids).logits.dataSync(), first.model.forward(ids).logits.dataSync());

      // Sharded and in another dtype: the same layout transformers writes, read back to the rounded values.
      const sharded = freshDir();
      await saveHfPolicy(first, sharded, { maxShardBytes: 20_000, dtype: "F32" });
      assert.ok(readdirSync(sharded).includes(INDEX_FILE));
      assert.deepEqual(JSON.parse(readFileSync(join(sharded, "config.json"), "utf8")), { ...tinyConfigJson(options), torch_dtype: "float32" });
      const third = await load(sharded);
      const c = await third.model.exportWeights();
      for (const [i, t] of a.entries()) assert.deepEqual(c[i].data, t.data, `${t.name} (sharded)`);
    });
  });
}

describe("the heads at some positions (what the losses and the critic fit read)", () => {
  it("equal the full forward's rows there, and the value head can be set", async () => {
    const dir = freshDir();
    await writeTinyModel(dir, LLAMA);
    const { model } = await load(dir);
    const ids = padded();
    const [B, T] = ids.shape;
    const positions = Int32Array.from([0, 3, 8, T + 1, T + 4, 3]); // rows b·T + t, a repeat included
    const { logits, values } = model.forward(ids);
    const V = LLAMA.vocabSize;
    const fullLogits = logits.dataSync();
    const fullValues = values.dataSync();
    const at = model.headsAt(ids, positions);
    const got = at.logits.dataSync();
    const gotValues = at.values.dataSync();
    for (const [p, i] of positions.entries()) {
      assertClose(got.subarray(p * V, (p + 1) * V), fullLogits.subarray(i * V, (i + 1) * V), `logits at ${i}`, 1e-5);
      assertClose([gotValues[p]], [fullValues[i]], `value at ${i}`, 1e-5);
    }
    assert.deepEqual(model.logitsAt(ids, positions).dataSync(), got);
    assert.throws(() => model.headsAt(ids, Int32Array.from([B * T])), /position 18 is outside \[0, 17\]/);
    const w = Float32Array.from({ length: LLAMA.hiddenSize }, (_, i) => (i % 3) - 1);
    model.setValueHead(w, 0.25);
    const h = model.featuresAt(ids, positions).dataSync();
    const d = LLAMA.hiddenSize;
    const want = [...positions].map((_, p) => w.reduce((s, wi, j) => s + wi * h[p * d + j], 0.25));
    assertClose(model.headsAt(ids, positions).values.dataSync(), want, "values after setValueHead", 1e-5);
  });
});

describe("over the bus", () => {
  it("a policy's weights travel in the weights codec a rollout worker loads, and a blob for another config is refused unchanged", async () => {
    const a = freshDir();
    const b = freshDir();
    await writeTinyModel(a, { ...QWEN2, seed: 21 });
    await writeTinyModel(b, { ...QWEN2, seed: 22 });
    const learner = await load(a);
    const worker = await load(b);
    const ids = padded();
    const blob = encodeWeights(await learner.model.exportWeights());
    assert.notDeepEqual(worker.model.forward(ids).logits.dataSync(), learner.model.forward(ids).logits.dataSync());
    assert.equal(loadPolicyWeights(worker.model, blob), undefined);
    assert.deepEqual(worker.model.forward(ids).logits.dataSync(), learner.model.forward(ids).logits.dataSync());
    const other = freshDir();
    await writeTinyModel(other, { ...LLAMA, intermediateSize: 48 });
    const before = await worker.model.exportWeights();
    assert.match(loadPolicyWeights(worker.model, encodeWeights(await (await load(other)).model.exportWeights())) ?? "", /missing parameter|has shape/);
    assert.deepEqual(await worker.model.exportWeights(), before, "a refused blob changes nothing");
  });
});

describe("decoding with a key/value cache", () => {
  for (const options of [LLAMA, QWEN2]) {
    it(`gives ${options.modelType}'s full-forward logits for every row of a left-padded batch, step after step`, async () => {
      const dir = freshDir();
      await writeTinyModel(dir, options);
      const { model } = await load(dir);
      const contexts = [Int32Array.from([1, 17, 42, 5, 60]), Int32Array.from([1, 3]), Int32Array.from([1, 9, 9, 9, 33, 58, 21])];
      const pushed = [
        [7, 40, 2],
        [11, 11, 11],
        [59, 0, 30],
        [5, 6, 4],
      ];
      const V = options.vocabSize;
      const decoder = model.decoder(contexts);
      const rows = contexts.map((c) => [...c]);
      try {
        for (let step = 0; step <= pushed.length; step++) {
          const got = decoder.logits();
          for (const [b, seq] of rows.entries()) {
            const full = tf.tidy(() => {
              const { logits } = model.forward(tf.tensor2d(seq, [1, seq.length], "int32"));
              return logits.slice([0, seq.length - 1, 0], [1, 1, V]).dataSync();
            });
            assertClose(got.subarray(b * V, (b + 1) * V), full, `${options.modelType} step ${step} row ${b}`, 1e-4);
          }
          if (step === pushed.length) break;
          decoder.push(Int32Array.from(pushed[step]));
          for (const [b, t] of pushed[step].entries()) rows[b].push(t);
        }
      } finally {
        decoder.dispose();
      }
    });
  }

  it("frees what it holds and refuses positions past max_position_embeddings", async () => {
    const dir = freshDir();
    await writeTinyModel(dir, LLAMA);
    const { model } = await load(dir);
    const before = tf.memory().numTensors;
    const decoder = model.decoder([Int32Array.from([1, 2, 3]), Int32Array.from([4])]);
    decoder.push(Int32Array.from([5, 6]));
    decoder.push(Int32Array.from([7, 8]));
    decoder.dispose();
    assert.equal(tf.memory().numTensors, before, "no tensor left behind");
    assert.throws(() => model.decoder([new Int32Array(65).fill(3)]), /65 tokens exceeds max_position_embeddings 64/);
    const long = model.decoder([new Int32Array(64).fill(3)]);
    assert.throws(() => long.push(Int32Array.from([1])), /65 tokens exceeds max_position_embeddings 64/);
    long.dispose();
  });
});

describe("loading refuses what it cannot build", () => {
  it("starts a model without a value head at V ≡ 0, and says so", async () => {
    const dir = freshDir();
    await writeTinyModel(dir, { ...LLAMA, valueHead: false });
    const lines: string[] = [];
    const { model } = await load(dir, (l) => lines.push(l));
    assert.match(lines.join("\n"), /no value head/);
    assert.ok(
      model
        .forward(padded())
        .values.dataSync()
        .every((v) => v === 0),
    );
  });

  it("drops RoPE's stored buffer and a tied model's copy of the embeddings, refuses unknown tensors by name", async () => {
    const inv = { name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [4], dtype: "F32" as const, data: new Float32Array(4) };
    const lmHead = { name: "lm_head.weight", shape: [61, 32], dtype: "F16" as const, data: new Float32Array(61 * 32) };
    const ok = freshDir();
    await writeTinyModel(ok, { ...QWEN2, extra: [inv, lmHead] });
    await load(ok);
    const bad = freshDir();
    await writeTinyModel(bad, { ...QWEN2, extra: [{ ...inv, name: "model.layers.0.mlp.experts.0.weight" }] });
    await assert.rejects(() => loadHfPolicy(bad), /no place for: model\.layers\.0\.mlp\.experts\.0\.weight/);
  });

  it("names a missing tensor and a tensor of the wrong shape", async () => {
    const dir = freshDir();
    await writeTinyModel(dir, LLAMA);
    const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, num_hidden_layers: 3 }));
    await assert.rejects(() => loadHfPolicy(dir), /missing parameter model\.layers\.2\.input_layernorm\.weight/);
    writeFileSync(join(dir, "config.json"), JSON.stringify({ ...config, intermediate_size: 48 }));
    await assert.rejects(() => loadHfPolicy(dir), /model\.layers\.0\.mlp\.gate_proj\.weight has shape \[64,32\], the config needs \[48,32\]/);
    const empty = freshDir();
    await writeTinyModel(empty, LLAMA);
    copyFileSync(join(dir, "config.json"), join(empty, "config.json"));
    rmSync(join(empty, "model.safetensors"));
    await assert.rejects(() => loadHfPolicy(empty), /neither model\.safetensors nor model\.safetensors\.index\.json/);
  });

  it("reads the config.json of published models of the family (fields as their model cards' files give them)", () => {
    // Qwen2.5-0.5B-Instruct: GQA 14:2, tied embeddings, q/k/v bias, a padded vocabulary, sliding window off.
    const qwen = parseLlamaConfig({
      architectures: ["Qwen2ForCausalLM"],
      attention_dropout: 0.0,
      bos_token_id: 151643,
      eos_token_id: 151645,
      hidden_act: "silu",
      hidden_size: 896,
      initializer_range: 0.02,
      intermediate_size: 4864,
      max_position_embeddings: 32768,
      max_window_layers: 21,
      model_type: "qwen2",
      num_attention_heads: 14,
      num_hidden_layers: 24,
      num_key_value_heads: 2,
      rms_norm_eps: 1e-6,
      rope_theta: 1000000.0,
      sliding_window: 32768,
      tie_word_embeddings: true,
      torch_dtype: "bfloat16",
      use_cache: true,
      use_sliding_window: false,
      vocab_size: 151936,
    });
    assert.deepEqual({ ...qwen }, QWEN25_05B);
    // SmolLM2-135M: the Llama architecture, GQA 9:3, tied, no biases, rope_scaling null.
    const smol = parseLlamaConfig({
      architectures: ["LlamaForCausalLM"],
      attention_bias: false,
      hidden_act: "silu",
      hidden_size: 576,
      intermediate_size: 1536,
      max_position_embeddings: 8192,
      mlp_bias: false,
      model_type: "llama",
      num_attention_heads: 9,
      num_hidden_layers: 30,
      num_key_value_heads: 3,
      rms_norm_eps: 1e-5,
      rope_scaling: null,
      rope_theta: 100000,
      tie_word_embeddings: true,
      vocab_size: 49152,
    });
    assert.equal(smol.headDim, 64);
    assert.equal(smol.qkvBias || smol.oBias || smol.mlpBias, false);
    // Llama 3.2's "llama3" RoPE scaling is not built: refused, not loaded with the wrong frequencies.
    assert.throws(
      () =>
        parseLlamaConfig({
          ...tinyConfigJson(LLAMA),
          rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: "llama3" },
        }),
      /rope_scaling asks for "llama3"/,
    );
  });

  it("refuses config.json fields asking for an architecture this code does not compute, naming the field", () => {
    const good = tinyConfigJson(LLAMA);
    assert.equal(parseLlamaConfig(good).headDim, 8);
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ model_type: "mistral" }, /model_type is "mistral"/],
      [{ hidden_act: "gelu" }, /hidden_act is "gelu"/],
      [{ rope_scaling: { rope_type: "llama3", factor: 8 } }, /rope_scaling asks for "llama3"/],
      [{ rope_parameters: { rope_type: "yarn", rope_theta: 1e6 } }, /rope_parameters\.rope_type is "yarn"/],
      [{ num_key_value_heads: 3 }, /num_key_value_heads \(3\) must divide num_attention_heads \(4\)/],
      [{ hidden_size: 36 }, /hidden_size gives a head dimension of 9/],
      [{ vocab_size: 0 }, /vocab_size is 0, not a positive integer/],
      [{ tie_word_embeddings: "yes" }, /tie_word_embeddings is "yes", not true or false/],
    ];
    for (const [change, message] of cases)
      assert.throws(
        () => parseLlamaConfig({ ...good, ...change }, "/models/x/config.json"),
        (err: Error) => {
          assert.match(err.message, /^\/models\/x\/config\.json: /);
          assert.match(err.message, message);
          return true;
        },
      );
    assert.throws(() => parseLlamaConfig({ ...tinyConfigJson(QWEN2), use_sliding_window: true }), /use_sliding_window is true/);
    // transformers 5's rope_parameters carry the theta.
    assert.equal(parseLlamaConfig({ ...good, rope_theta: undefined, rope_parameters: { rope_type: "default", rope_theta: 1e6 } }).ropeTheta, 1e6);
  });
});
