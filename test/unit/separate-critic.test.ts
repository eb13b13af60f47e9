// spec.model.critic "separate" (learner/learner.ts): a second network of the policy's architecture, made
// from the policy, that learns the value loss alone with its own Adam; the policy's gradient carries no
// value loss. Its checkpoint round trip, the resume refusal across critic settings, and the schema field.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Trajectory } from "../../core/trajectory.ts";
import { parseJob } from "../../crds/job-spec.ts";
import { CRITICS, modelSchema, type StepPOJobSpec } from "../../crds/steppojob.ts";
import { restoreLearner, saveLearner } from "../../learner/checkpoint.ts";
import { CRITIC_DIR, exportTrainedPolicy } from "../../learner/hf-export.ts";
import { Learner } from "../../learner/learner.ts";
import { setUpRun } from "../../learner/run-setup.ts";
import { checkResumeSpec, ResumeSpecError, trainingSpecHash } from "../../learner/resume-spec.ts";
import { selectBackend } from "../../policy/backend.ts";
import { Tokenizer } from "../../policy/tokenizer.ts";
import { writeTinyModel } from "../support/tiny-hf-model.ts";
import { twoKindEpisodes } from "../support/two-kind-episodes.ts";
import { writeWordTokenizer } from "../support/word-tokenizer.ts";

const CONFIG = { vocabSize: 12, dModel: 16, layers: 1, heads: 2, contextLength: 32 };
const TOKENIZER = new Tokenizer(["a", "b", "c", "d", "e", "f", "g"]);

function specWith(model: object, algorithm: object = {}): StepPOJobSpec {
  const job = parseJob(
    {
      apiVersion: "steppo.dev/v1alpha1",
      kind: "StepPOJob",
      metadata: { name: "critic" },
      spec: { seed: 2, algorithm, model: { dModel: 16, layers: 1, heads: 2, contextLength: 32, ...model }, learner: { backend: "cpu" } },
    },
    "critic.yaml",
  );
  return job.spec;
}

function learnerWith(model: object, algorithm: object = {}): Learner {
  return new Learner(CONFIG, specWith(model, algorithm));
}

/** The batch every test here trains on: episodes whose first context token tells success from failure. */
function batch(n = 24): Trajectory[] {
  return twoKindEpisodes(n);
}

async function weights(model: { exportWeights(): Promise<{ name: string; data: Float32Array }[]> }): Promise<Map<string, Float32Array>> {
  return new Map((await model.exportWeights()).map((w) => [w.name, w.data]));
}

function assertSame(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string): void {
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  for (const [name, data] of a) assert.ok(Buffer.from(data.buffer).equals(Buffer.from(b.get(name)!.buffer)), `${what}: ${name} differs`);
}

test("shared (the default): no critic network, startCritic is a no-op, the value head keeps criticLearningRate's scale", async () => {
  await selectBackend("cpu", () => {});
  const l = learnerWith({}, { criticLearningRate: 3e-3 });
  assert.equal(l.spec.model.critic, "shared");
  assert.equal(l.separateCritic, false);
  await l.startCritic();
  assert.equal(l.critic, undefined);
  assert.deepEqual([...(l.optimizer.config.learningRateScales?.keys() ?? [])].sort(), ["value_head.b", "value_head.w"]);
  l.dispose();
});

test("separate: the policy's update is the same whatever valueCoef, its value head is untouched, and the critic learns", async () => {
  await selectBackend("cpu", () => {});
  const run = async (valueCoef: number) => {
    const l = learnerWith({ critic: "separate" }, { valueCoef, criticLearningRate: 3e-3 });
    assert.equal(l.optimizer.config.learningRateScales, undefined, "the policy's optimiser scales nothing");
    await l.startCritic();
    assertSame(await weights(l.critic!.model), await weights(l.model), "the critic starts as a copy of the policy");
    const policyBefore = await weights(l.model);
    const criticBefore = await weights(l.critic!.model);
    l.update(batch());
    const policy = await weights(l.model);
    const critic = await weights(l.critic!.model);
    for (const name of ["value_head.w", "value_head.b"]) assert.deepEqual(policy.get(name), policyBefore.get(name), `the policy's ${name} moved`);
    assert.ok(
      [...critic].some(([name, d]) => name.startsWith("value_head") && d.some((x, i) => x !== criticBefore.get(name)![i])),
      "the critic's value head moved",
    );
    assert.equal(l.critic!.optimizer.config.learningRate, 3e-3);
    l.dispose();
    return policy;
  };
  // A value loss in the policy's gradient would make its trunk depend on valueCoef.
  assertSame(await run(0.5), await run(50), "policy weights after one update, valueCoef 0.5 vs 50");
});

test("separate: the critic's value loss falls over a few updates on a fixed batch", async () => {
  await selectBackend("cpu", () => {});
  const l = learnerWith({ critic: "separate" }, { criticLearningRate: 1e-2, criticWarmup: { episodes: 0 } });
  await l.startCritic();
  const fixed = batch();
  const losses = Array.from({ length: 6 }, () => l.update(fixed).valueLoss);
  assert.ok(losses.at(-1)! < 0.5 * losses[0], `value loss ${losses.map((x) => x.toFixed(4)).join(" → ")}`);
  l.dispose();
});

test("separate: a checkpoint restores the critic and its Adam state; the next update is the same", async () => {
  await selectBackend("cpu", () => {});
  const dir = mkdtempSync(join(tmpdir(), "steppo-critic-"));
  try {
    const a = learnerWith({ critic: "separate" });
    await a.startCritic();
    a.update(batch());
    await saveLearner(dir, 2, a, TOKENIZER, {});
    const b = learnerWith({ critic: "separate" });
    assert.ok(await restoreLearner(dir, b, TOKENIZER, () => {}));
    assertSame(await weights(b.critic!.model), await weights(a.critic!.model), "restored critic");
    assertSame(await weights(b.model), await weights(a.model), "restored policy");
    assert.equal(b.critic!.optimizer.step, a.critic!.optimizer.step);
    const sa = a.update(batch());
    const sb = b.update(batch());
    assert.equal(sb.valueLoss, sa.valueLoss);
    assert.equal(sb.explainedVariance, sa.explainedVariance);
    assertSame(await weights(b.critic!.model), await weights(a.critic!.model), "critic after the next update");
    a.dispose();
    b.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("resuming under the other spec.model.critic is refused by name; a warm start (update 0) starts either", async () => {
  await selectBackend("cpu", () => {});
  for (const [from, to] of [
    ["separate", "shared"],
    ["shared", "separate"],
  ]) {
    const dir = mkdtempSync(join(tmpdir(), "steppo-critic-"));
    try {
      const a = learnerWith({ critic: from });
      await saveLearner(dir, 2, a, TOKENIZER, {}); // update 0: a warm start
      const warm = learnerWith({ critic: to });
      assert.ok(await restoreLearner(dir, warm, TOKENIZER, () => {}));
      assert.equal(warm.critic, undefined, "a warm start holds no critic");
      await a.startCritic();
      a.update(batch());
      await saveLearner(dir, 2, a, TOKENIZER, {});
      const b = learnerWith({ critic: to });
      await assert.rejects(
        restoreLearner(dir, b, TOKENIZER, () => {}),
        (e: Error) => e instanceof ResumeSpecError && e.message.includes(`spec.model.critic "${from}" → "${to}"`),
      );
      for (const l of [a, warm, b]) l.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test("a checkpoint written before spec.model.critic existed resumes under shared, not under separate", () => {
  const current = specWith({});
  const { critic: _, ...model } = current.model;
  const old = { ...current, model } as typeof current; // as checkpoints stored their spec before the field
  const stored = { spec: old, specHash: trainingSpecHash(old), version: 3 };
  checkResumeSpec("old.steppo", stored, current);
  const separate = specWith({ critic: "separate" });
  assert.throws(() => checkResumeSpec("old.steppo", stored, separate), /model\.critic "shared" → "separate"/);
});

test("spec.model.critic: an enum of shared and separate, default shared", () => {
  assert.deepEqual(CRITICS, ["shared", "separate"]);
  assert.deepEqual(modelSchema.props.critic.openapi.enum, ["shared", "separate"]);
  assert.equal(modelSchema.props.critic.openapi.default, "shared");
  assert.throws(
    () => parseJob({ apiVersion: "steppo.dev/v1alpha1", kind: "StepPOJob", metadata: { name: "x" }, spec: { model: { critic: "twin" } } }, "x.yaml"),
    /spec\.model\.critic: must be one of shared, separate/,
  );
});

test("separate works for a Hugging Face model with LoRA: the critic's adapters and v_head learn, the policy's v_head does not, a checkpoint restores it", async () => {
  const root = mkdtempSync(join(tmpdir(), "steppo-critic-hf-"));
  try {
    const modelDir = join(root, "model");
    mkdirSync(modelDir);
    const size = writeWordTokenizer(modelDir, ["a", "b", "c", "d", "e", "f", "g", "h"]);
    const o = { modelType: "qwen2", hiddenSize: 16, layers: 1, heads: 2, kvHeads: 1, intermediateSize: 32, tie: true, dtype: "F32", seed: 3 } as const;
    await writeTinyModel(modelDir, { ...o, vocabSize: size, maxPositions: 64 });
    const job = parseJob(
      {
        apiVersion: "steppo.dev/v1alpha1",
        kind: "StepPOJob",
        metadata: { name: "critic-hf" },
        spec: {
          seed: 2,
          algorithm: { criticLearningRate: 1e-2 },
          model: { source: modelDir, critic: "separate", contextLength: 32, lora: { rank: 2, alpha: 4, targetModules: ["q_proj", "v_proj"] } },
          learner: { backend: "cpu" },
        },
      },
      "critic-hf.yaml",
    );
    const quiet = () => {};
    const { learner, tokenizer } = await setUpRun(job, quiet);
    await learner.startCritic();
    const policyBefore = await weights(learner.model);
    const criticBefore = await weights(learner.critic!.model);
    assertSame(criticBefore, policyBefore, "the critic starts as the policy's trainable weights");
    learner.update(batch());
    const policy = await weights(learner.model);
    const critic = await weights(learner.critic!.model);
    const moved = (a: Map<string, Float32Array>, b: Map<string, Float32Array>, name: string) => a.get(name)!.some((x, i) => x !== b.get(name)![i]);
    for (const name of policy.keys()) if (name.startsWith("v_head")) assert.ok(!moved(policy, policyBefore, name), `the policy's ${name} moved`);
    assert.ok(
      [...critic.keys()].some((n) => n.startsWith("v_head") && moved(critic, criticBefore, n)),
      "the critic's v_head moved",
    );
    assert.ok(
      [...critic.keys()].some((n) => n.includes("lora") && moved(critic, criticBefore, n)),
      "the critic's adapters moved",
    );
    const ckpt = join(root, "ckpt");
    await saveLearner(ckpt, 1, learner, tokenizer, {});
    const again = await setUpRun(job, quiet);
    assert.ok(await restoreLearner(ckpt, again.learner, again.tokenizer, quiet));
    assertSame(await weights(again.learner.critic!.model), critic, "restored critic");
    // steppo export writes the critic beside the policy in the same layout (here a PEFT adapter), under critic/.
    const out = join(root, "exported");
    const exported = await exportTrainedPolicy(job, { checkpointDir: ckpt, out, log: quiet });
    assert.equal(exported.critic, join(out, CRITIC_DIR));
    assert.deepEqual(readdirSync(join(out, CRITIC_DIR)).sort(), ["adapter_config.json", "adapter_model.safetensors", "value_head.safetensors"]);
    assert.ok(readdirSync(out).includes("adapter_model.safetensors"), "the policy's adapter beside it");
    learner.dispose();
    again.learner.dispose();
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
