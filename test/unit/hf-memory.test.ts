// The memory a Hugging Face policy needs, as the learner and every rollout worker print it at start
// (policy/hf/hf-memory.ts): the sums checked against the formulas written out here, and the line a real
// model load prints.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { parseJob } from "../../crds/job-spec.ts";
import { openEnvironment } from "../../envs/registry.ts";
import { jobModel } from "../../learner/run-setup.ts";
import { selectBackend } from "../../policy/backend.ts";
import { formatBytes, hfMemoryEstimate, type MemoryInputs, memoryLine } from "../../policy/hf/hf-memory.ts";
import { QWEN25_05B } from "../support/published-configs.ts";
import { writeTinyModel } from "../support/tiny-hf-model.ts";
import { writeWordTokenizer } from "../support/word-tokenizer.ts";

const INPUTS: MemoryInputs = {
  config: QWEN25_05B,
  parameters: 494_033_920,
  trainable: 494_033_920,
  contextLength: 4096,
  episodesDecoded: 32,
  evaluationEpisodes: 50,
  minibatchSteps: 64,
  maxStepTokens: 24,
  klReference: false,
  separateCritic: false,
};

test("the estimate adds up the terms of a full fine-tune, a KL reference and a separate critic as written", () => {
  const e = hfMemoryEstimate(INPUTS);
  const kv = 4 * 2 * 24 * 2 * 64 * 4096; // float32 × (k, v) × layers × kv heads × head dim × positions
  assert.equal(kv, 96 * 2 ** 20, "96 MiB an episode at 4096 positions");
  assert.equal(e.kvCachePerEpisode, kv);
  assert.equal(e.weights, 4 * 494_033_920);
  assert.equal(e.worker, 4 * 494_033_920 + 32 * kv);
  assert.equal(e.optimizer, 12 * 494_033_920, "two Adam moments and one gradient");
  assert.equal(e.logits, 4 * 2 * 64 * 24 * 151936);
  assert.equal(e.learner, 16 * 494_033_920 + e.logits + 50 * kv);
  const both = hfMemoryEstimate({ ...INPUTS, klReference: true, separateCritic: true });
  assert.equal(both.reference, 4 * 494_033_920);
  assert.equal(both.critic, 16 * 494_033_920, "its own weights, moments and gradient");
  assert.equal(both.learner, e.learner + 20 * 494_033_920);
});

test("with LoRA only the adapters and the value head carry Adam's moments and a gradient", () => {
  const lora = hfMemoryEstimate({ ...INPUTS, trainable: 4_399_104 });
  assert.equal(lora.optimizer, 12 * 4_399_104);
  assert.equal(lora.weights, 4 * 494_033_920, "the frozen weights are still held");
});

test("the log line names each term, and only the ones the job asks for", () => {
  assert.equal(formatBytes(96 * 2 ** 20), "96 MiB");
  assert.equal(formatBytes(1.5 * 2 ** 30), "1.5 GiB");
  const line = memoryLine(INPUTS);
  assert.match(line, /a rollout worker ~4\.8 GiB \(weights 1\.8 GiB, KV cache 96 MiB an episode at 4096 positions × 32 episodes\)/);
  assert.match(line, /Adam and a gradient 5\.5 GiB/);
  assert.doesNotMatch(line, /KL reference|separate critic/);
  assert.match(memoryLine({ ...INPUTS, klReference: true }), /KL reference 1\.8 GiB/);
});

const dir = mkdtempSync(join(tmpdir(), "steppo-hf-memory-"));
after(() => rmSync(dir, { recursive: true, force: true }));

test("loading a model directory prints the memory line with the loaded model's own parameter count", async () => {
  await selectBackend("wasm", () => {});
  const job = parseJob(
    {
      apiVersion: "steppo.dev/v1alpha1",
      kind: "StepPOJob",
      metadata: { name: "memory" },
      spec: {
        seed: 1,
        model: { source: dir, contextLength: 128 },
        environment: { name: "multihop-qa", maxSteps: 3, maxStepTokens: 12 },
        rollout: { episodesPerUpdate: 8 },
        algorithm: { minibatchSteps: 16 },
        warmup: { enabled: false },
      },
    },
    "memory.yaml",
  );
  const env = await openEnvironment(job.spec.environment, 1);
  const vocabSize = writeWordTokenizer(dir, env.vocabulary());
  const model = { modelType: "qwen2", hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 64, tie: true, dtype: "F32" } as const;
  await writeTinyModel(dir, { ...model, vocabSize, seed: 2, maxPositions: 128 });
  const lines: string[] = [];
  const { factory } = await jobModel(job, env, (l) => lines.push(l));
  const policy = factory.create();
  const line = lines.find((l) => l.startsWith("memory (float32"));
  assert.ok(line, lines.join("\n"));
  // The parameters counted from the config, not from the loaded model: the embedding (tied: no separate
  // head), per layer q/k/v with bias (k, v at 2 kv heads × 8), o, the three MLP projections and two norms,
  // the final norm and the value head (a weight per hidden unit and a bias).
  const [H, I, kvWidth] = [32, 64, 16];
  const perLayer = H * H + H + 2 * (H * kvWidth + kvWidth) + H * H + 3 * H * I + 2 * H;
  const counted = vocabSize * H + 2 * perLayer + H + (H + 1);
  assert.equal(policy.parameterCount(), counted, "the loaded model holds the parameters its config implies");
  const weights = formatBytes(4 * counted);
  const kv = formatBytes(4 * 2 * 2 * 2 * 8 * 128); // layers 2, kv heads 2, head dim 32 / 4
  assert.ok(line.includes(`weights ${weights}, KV cache ${kv} an episode at 128 positions × 8 episodes`), line);
  assert.ok(line.includes(`logits ${formatBytes(4 * 2 * 16 * 12 * vocabSize)} (16 steps × 12 tokens × ${vocabSize})`), line);
  policy.dispose();
});
