// LoRA adapters on the Llama-family policy (policy/hf/lora.ts, lora-checkpoint.ts): fresh adapters change
// nothing; random ones give the logits of an independent reference on the merged weights W + (α/r)·B·A
// (merged in plain JS here); training moves the adapters and the value head only; adapters save in PEFT's
// layout and load back; a merged export is a plain model with the same logits; the learner's PPO and
// cloning gradients reach the adapters and the value head by name.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Adam } from "../../learner/adam.ts";
import { cloneGradients, ppoGradients } from "../../learner/ppo-loss.ts";
import { packSteps, type StepSample } from "../../learner/step-batch.ts";
import { selectBackend, tf } from "../../policy/backend.ts";
import { type HfPolicy, loadHfPolicy, saveHfPolicy } from "../../policy/hf/hf-checkpoint.ts";
import { attachFreshLora, loadLoraAdapter, saveLoraAdapter } from "../../policy/hf/lora-checkpoint.ts";
import { freshAdapters, type LoraSpec, loraNames, parseAdapterConfig } from "../../policy/hf/lora.ts";
import { readSafetensorsHeader } from "../../policy/hf/safetensors.ts";
import { referenceLlama } from "../support/llama-reference.ts";
import { TINY_QWEN2, type TinyModelOptions, writeTinyModel } from "../support/tiny-hf-model.ts";

const root = mkdtempSync(join(tmpdir(), "steppo-hf-lora-"));
let dirs = 0;
const freshDir = () => join(root, `m${++dirs}`);
const held: HfPolicy[] = [];
before(async () => {
  await selectBackend("wasm", () => {});
});
after(() => {
  for (const p of held) p.model.dispose();
  rmSync(root, { recursive: true, force: true });
});

const OPTIONS: TinyModelOptions = { ...TINY_QWEN2, seed: 31 };
const SPEC: LoraSpec = { rank: 4, alpha: 8, targets: ["q_proj", "v_proj", "o_proj", "down_proj"] };
const SEQ = [1, 17, 42, 5, 60, 33, 8];
const ids = () => tf.tensor2d(SEQ, [1, SEQ.length], "int32");

let modelDir: string;
before(async () => {
  modelDir = freshDir();
  await writeTinyModel(modelDir, OPTIONS);
});

async function load(): Promise<HfPolicy> {
  const p = await loadHfPolicy(modelDir);
  held.push(p);
  return p;
}

describe("LoRA adapters", () => {
  it("fresh ones leave the outputs exactly as loaded, and only adapters and the value head train", async () => {
    const base = await load();
    const before = base.model.forward(ids()).logits.dataSync();
    const p = await load();
    attachFreshLora(p, SPEC, 1);
    assert.deepEqual(p.model.forward(ids()).logits.dataSync(), before);
    const trainable = p.model.variables.map((v) => v.name.split("#")[0]).sort();
    const expected = [...SPEC.targets.flatMap((t) => [0, 1].map((l) => `model.layers.${l}.${t === "down_proj" ? "mlp" : "self_attn"}.${t}`))]
      .flatMap((m) => [loraNames(m).a, loraNames(m).b])
      .concat(["v_head.summary.bias", "v_head.summary.weight"])
      .sort();
    assert.deepEqual(trainable, expected);
  });

  it("random ones give the reference's logits on the merged weights W + (α/r)·B·A", async () => {
    const p = await load();
    const adapters = freshAdapters(p.config, SPEC, 2).map((t) =>
      t.name.endsWith("lora_B.weight") ? { ...t, data: Float32Array.from(t.data, (_, i) => Math.sin(i * 0.7 + t.name.length) * 0.2) } : t,
    );
    p.model.attachLora(SPEC, adapters);
    // The merge, in plain JS: W[o, i] += (α/r) Σ_k B[o, k] A[k, i].
    const tensors = new Map((await p.model.exportWeights()).map((t) => [t.name, { data: Float32Array.from(t.data), shape: t.shape }]));
    const byName = new Map(adapters.map((t) => [t.name, t]));
    for (const [name, t] of tensors) {
      if (!name.endsWith(".weight") || name.includes("lora_")) continue;
      const names = loraNames(name.slice(0, -".weight".length));
      const A = byName.get(names.a);
      const B = byName.get(names.b);
      if (!A || !B) continue;
      const [out, inp] = t.shape;
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inp; i++) {
          let s = 0;
          for (let k = 0; k < SPEC.rank; k++) s += B.data[o * SPEC.rank + k] * A.data[k * inp + i];
          t.data[o * inp + i] += (SPEC.alpha / SPEC.rank) * s;
        }
    }
    const ref = referenceLlama({ ...OPTIONS, rmsNormEps: 1e-6, ropeTheta: 10000, tie: true }, tensors, SEQ);
    const got = p.model.forward(ids()).logits.dataSync();
    const base = (await load()).model.forward(ids()).logits.dataSync();
    let moved = 0;
    for (let t = 0; t < SEQ.length; t++)
      for (let v = 0; v < OPTIONS.vocabSize; v++) {
        const want = ref.logits[t][v];
        const g = got[t * OPTIONS.vocabSize + v];
        assert.ok(Math.abs(g - want) <= 2e-4 * (1 + Math.abs(want)), `logit [${t}, ${v}]: ${g} vs ${want}`);
        moved = Math.max(moved, Math.abs(g - base[t * OPTIONS.vocabSize + v]));
      }
    assert.ok(moved > 1e-2, `the adapters move the logits (by ${moved})`);
  });

  it("training moves the adapters and the value head, never the loaded weights", async () => {
    const p = await load();
    attachFreshLora(p, SPEC, 3);
    const frozen = (await p.model.exportWeights()).filter((t) => !t.name.includes("lora_") && !t.name.startsWith("v_head"));
    const target = tf.tensor1d([5, 9, 13, 2, 40, 41, 7], "int32");
    const loss = () =>
      tf.tidy(() => {
        const { logits, values } = p.model.forward(ids());
        const logp = tf.logSoftmax(tf.reshape(logits, [SEQ.length, OPTIONS.vocabSize]));
        const nll = tf.neg(tf.mean(tf.sum(tf.mul(logp, tf.oneHot(target, OPTIONS.vocabSize)), 1)));
        return tf.add(nll, tf.mean(tf.square(tf.sub(values, 1)))) as tf.Scalar;
      });
    const first = loss().dataSync()[0];
    const optimizer = tf.train.sgd(0.5);
    for (let i = 0; i < 10; i++) tf.dispose(optimizer.minimize(loss, true, p.model.variables) ?? []);
    const last = loss().dataSync()[0];
    assert.ok(last < first - 0.05, `loss ${first} → ${last}`);
    const after = new Map((await p.model.exportWeights()).map((t) => [t.name, t]));
    for (const t of frozen) assert.deepEqual(after.get(t.name)!.data, t.data, `${t.name} stays frozen`);
    const bMoved = (await p.model.exportAdapters()).some((t) => t.name.endsWith("lora_B.weight") && t.data.some((x) => x !== 0));
    assert.ok(bMoved, "the B matrices left zero");
    optimizer.dispose();
  });

  it("save in PEFT's layout and load back onto the base model to the same outputs", async () => {
    const p = await load();
    attachFreshLora(p, SPEC, 4);
    tf.tidy(() => {
      for (const v of p.model.variables) v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.05, "float32", 9)));
    });
    const dir = freshDir();
    await saveLoraAdapter(p, dir, modelDir);
    assert.deepEqual(readdirSync(dir).sort(), ["adapter_config.json", "adapter_model.safetensors", "value_head.safetensors"]);
    const config = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8"));
    assert.equal(config.peft_type, "LORA");
    assert.equal(config.r, 4);
    assert.equal(config.lora_alpha, 8);
    assert.deepEqual(config.target_modules, SPEC.targets);
    assert.equal(config.base_model_name_or_path, modelDir);
    const names = (await readSafetensorsHeader(join(dir, "adapter_model.safetensors"))).entries.map((e) => e.name);
    assert.ok(names.includes("base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight"), names.join(", "));
    assert.equal(names.length, 2 * 2 * SPEC.targets.length);
    const q = await load();
    assert.deepEqual(await loadLoraAdapter(q, dir), SPEC);
    const a = p.model.forward(ids());
    const b = q.model.forward(ids());
    assert.deepEqual(b.logits.dataSync(), a.logits.dataSync());
    assert.deepEqual(b.values.dataSync(), a.values.dataSync());

    // Merged: a plain Hugging Face model again, with the LoRA model's outputs.
    const merged = freshDir();
    await saveHfPolicy(p, merged);
    const m = await loadHfPolicy(merged);
    held.push(m);
    assert.equal(m.model.loraSpec, undefined);
    const mergedLogits = m.model.forward(ids()).logits.dataSync();
    const want = a.logits.dataSync();
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(mergedLogits[i] - want[i]) <= 1e-4 * (1 + Math.abs(want[i])), `merged logit ${i}`);
  });

  it("get the learner's PPO and cloning gradients by their own names, and its optimiser moves them alone", async () => {
    const p = await load();
    attachFreshLora(p, SPEC, 7);
    const sample: StepSample = {
      trajId: "t",
      workerId: "w",
      policyVersion: 0,
      contextIds: Int32Array.of(1, 17, 42, 5),
      actionIds: Int32Array.of(60, 33, 8),
      behaviourLogProbs: Float32Array.of(-4, -4, -4),
      oldLogProbs: Float32Array.of(-4, -4, -4),
      advantages: Float32Array.of(1, 1, 1),
      valueTargets: Float32Array.of(0.5),
      oldValues: Float32Array.of(0),
      valueOffsets: Int32Array.of(0),
    };
    const batch = packSteps([sample, { ...sample, contextIds: Int32Array.of(1, 9), advantages: Float32Array.of(-1, -1, -1) }]);
    const cfg = { ratio: "step" as const, clip: 0.2, valueCoef: 0.5, entropyCoef: 0, klCoef: 0, importanceCap: 2, temperature: 1 };
    const trainable = new Map(p.model.variables.map((v) => [v.name.split("#")[0], v]));
    for (const [what, { grads }] of [
      ["ppo", ppoGradients(p.model, batch, cfg)],
      ["cloning", cloneGradients(p.model, batch)],
    ] as const) {
      const names = Object.keys(grads);
      // Cloning reads no value; PPO trains the critic too. Every gradient has its own variable's shape.
      const want = [...trainable.keys()].filter((n) => what === "ppo" || !n.startsWith("v_head")).sort();
      assert.deepEqual(names.sort(), want, `${what}: gradients for the trainable variables only`);
      for (const n of names) assert.deepEqual(grads[n].shape, trainable.get(n)!.shape, `${what}: ${n}`);
      // A fresh adapter's B is zero, so B's gradient is where training starts: it must not be zero.
      const b = tf.tidy(() => tf.sum(tf.abs(grads["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"])).dataSync()[0]);
      assert.ok(b > 0, `${what}: lora_B's gradient ${b}`);
      tf.dispose(Object.values(grads));
    }
    // The learner's optimiser keeps moments for the trainable variables only, and moves nothing else.
    const adam = new Adam(p.model.params, { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, maxGradNorm: 1 });
    assert.deepEqual([...adam.m.keys()].sort(), [...trainable.keys()].sort());
    const frozen = (await p.model.exportWeights()).filter((t) => !trainable.has(t.name));
    const { grads } = ppoGradients(p.model, batch, cfg);
    adam.apply(grads);
    const after = new Map((await p.model.exportWeights()).map((t) => [t.name, t]));
    for (const t of frozen) assert.deepEqual(after.get(t.name)!.data, t.data, `${t.name} frozen`);
    assert.ok(
      after.get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight")!.data.some((x) => x !== 0),
      "lora_B moved",
    );
    const stray = { "model.norm.weight": tf.onesLike(p.model.params.get("model.norm.weight")!) };
    assert.throws(() => adam.apply(stray), /a gradient for model\.norm\.weight, which is not a trainable parameter/);
    tf.dispose([...Object.values(grads), ...Object.values(stray)]);
    adam.dispose();
  });

  it("holds no tensor beyond its variables, and none once disposed", async () => {
    const start = tf.memory().numTensors;
    const p = await loadHfPolicy(modelDir);
    attachFreshLora(p, SPEC, 6);
    assert.equal(tf.memory().numTensors - start, p.model.params.size, "one tensor per variable");
    tf.tidy(() => {
      p.model.forward(ids());
    });
    await p.model.mergedWeights();
    p.model.importWeights(await p.model.exportWeights());
    p.model.setValueHead(new Float32Array(OPTIONS.hiddenSize), 0);
    assert.equal(tf.memory().numTensors - start, p.model.params.size);
    p.model.dispose();
    assert.equal(tf.memory().numTensors, start);
  });

  it("refuses adapters that do not fit, and PEFT settings it does not compute, naming them", async () => {
    const p = await load();
    const adapters = freshAdapters(p.config, SPEC, 5);
    assert.throws(
      () => p.model.attachLora(SPEC, adapters.slice(1)),
      /missing adapter tensor base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_A\.weight/,
    );
    assert.throws(() => p.model.attachLora({ ...SPEC, targets: ["q_proj"] }, adapters), /modules this spec does not adapt/);
    assert.throws(() => p.model.attachLora({ ...SPEC, rank: 0 }, adapters), /rank 0/);
    p.model.attachLora(SPEC, adapters);
    assert.throws(() => p.model.attachLora(SPEC, adapters), /attached already/);
    const good = { peft_type: "LORA", r: 8, lora_alpha: 16, target_modules: ["q_proj", "v_proj"], bias: "none" };
    assert.deepEqual(parseAdapterConfig(good, "a.json"), { rank: 8, alpha: 16, targets: ["q_proj", "v_proj"] });
    for (const [change, message] of [
      [{ peft_type: "IA3" }, /a\.json: peft_type is "IA3"/],
      [{ use_dora: true }, /use_dora is true/],
      [{ use_rslora: true }, /use_rslora is true/],
      [{ target_modules: ["q_proj", "lm_head"] }, /target_modules is/],
      [{ bias: "all" }, /bias is "all"/],
      [{ r: 0 }, /r is 0/],
    ] as const)
      assert.throws(() => parseAdapterConfig({ ...good, ...change }, "a.json"), message);
  });
});
