// `steppo run` on a Hugging Face-format model (issue #20): a short StepPO run on the quickstart task
// (multihop-qa) with a tiny Qwen2 model and a word-level tokenizer, both written here (nothing is
// downloaded). Checked: the ids the workers sample are the ids the learner scores, with the same log-probs
// over the tokenizer's ids (the model's head is padded past them, as published models' are); a step ends at
// the tool call's closing "]" or the end-of-turn; the run learns (the demonstrated actions' log-prob rises
// through the warm-up, and the PPO updates raise the probability of the steps with positive advantage);
// checkpoints resume and record the tokenizer and the model files; with LoRA only the adapters and the value
// head train and are saved. Over NATS: test/integration/distributed-hf.test.ts.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Rng } from "../../core/rng.ts";
import { parseJob } from "../../crds/job-spec.ts";
import type { StepPOJob } from "../../crds/steppojob.ts";
import type { Environment, Episode, Task } from "../../envs/environment.ts";
import { openEnvironment } from "../../envs/registry.ts";
import { readCheckpoint } from "../../learner/checkpoint-store.ts";
import { restoreLearner } from "../../learner/checkpoint.ts";
import { collectDemonstrations, type DemoStep } from "../../learner/demonstrations.ts";
import type { EpisodeSampleFile } from "../../learner/episode-sample.ts";
import type { Learner } from "../../learner/learner.ts";
import { exportTrainedPolicy } from "../../learner/hf-export.ts";
import { setUpRun } from "../../learner/run-setup.ts";
import { selectBackend } from "../../policy/backend.ts";
import { HfAgentTokenizer } from "../../policy/hf/hf-agent-tokenizer.ts";
import { modelIdentity } from "../../policy/hf/hf-model-identity.ts";
import { loadRunPolicy } from "../../policy/hf/hf-run-policy.ts";
import { runJob } from "../../runtime/run-job.ts";
import { runEpisodes } from "../../workers/agent-loop.ts";
import { writeTinyModel } from "../support/tiny-hf-model.ts";
import { CHATML_TEMPLATE, writeWordTokenizer } from "../support/word-tokenizer.ts";

const quiet = () => {};
const SEED = 5;
const MAX_STEP_TOKENS = 14;
/** Output rows past the tokenizer's ids, as published models pad their heads (never sampled, never scored). */
const HEAD_PADDING = 3;
const ENVIRONMENT = { name: "multihop-qa", maxSteps: 3, maxStepTokens: MAX_STEP_TOKENS, config: { people: 12, films: 6, cities: 4, companies: 4 } } as const;

function hfJob(name: string, model: Record<string, unknown>, ckptDir: string, extra: { klCoef?: number } = {}): StepPOJob {
  return parseJob(
    {
      apiVersion: "steppo.dev/v1alpha1",
      kind: "StepPOJob",
      metadata: { name },
      spec: {
        seed: SEED,
        algorithm: { epochs: 2, minibatchSteps: 16, learningRate: 0.001, klCoef: extra.klCoef ?? 0 },
        model: { contextLength: 160, ...model },
        environment: ENVIRONMENT,
        warmup: { enabled: true, demonstrations: 60, epochs: 4, minibatchSteps: 16, learningRate: 0.01 },
        rollout: { episodesPerUpdate: 16, groupSize: 4 },
        learner: { backend: "wasm" },
        training: { updates: 4, evalEvery: 100, evalEpisodes: 4 },
        checkpoint: { interval: 2, keep: 2, dir: ckptDir },
      },
    },
    `${name}.yaml`,
  );
}

/** A tiny random Qwen2 over a word-level tokenizer of the environment's words, in `dir`. */
async function writeModelDir(dir: string, seed = 3): Promise<number> {
  mkdirSync(dir, { recursive: true });
  const env = await openEnvironment(hfJob("probe", {}, dir).spec.environment, SEED);
  const size = writeWordTokenizer(dir, env.vocabulary());
  const o = { modelType: "qwen2", hiddenSize: 32, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 64, tie: true, dtype: "F32", seed } as const;
  await writeTinyModel(dir, { ...o, vocabSize: size + HEAD_PADDING, maxPositions: 256 });
  return size;
}

/** Demonstrated steps of episodes the warm-up never saw (another seed), as the learner's tokenizer encodes them. */
async function heldOutDemonstrations(job: StepPOJob): Promise<DemoStep[]> {
  const setup = await setUpRun(job, quiet);
  const { steps } = await collectDemonstrations(setup.env, setup.tokenizer, new Rng(991), {
    episodes: 12,
    suboptimalFraction: 0,
    maxSteps: ENVIRONMENT.maxSteps,
    maxStepTokens: MAX_STEP_TOKENS,
    contextLength: setup.config.contextLength,
  });
  setup.learner.dispose();
  return steps;
}

/** Mean log-prob per token of `steps`' actions under the learner's policy. */
function meanLogProb(learner: Learner, steps: DemoStep[]): number {
  const { logProbs } = learner.scoreSteps(learner.model, steps);
  const all = logProbs.flatMap((lp) => Array.from(lp));
  return all.reduce((s, x) => s + x, 0) / all.length;
}

/** The demonstrations' mean log-prob per token: with the model as loaded, and with the newest checkpoint's weights. */
async function demoLogProbs(job: StepPOJob, ckptDir: string, demos: DemoStep[]): Promise<{ loaded: number; trained: number }> {
  const setup = await setUpRun(job, quiet);
  const loaded = meanLogProb(setup.learner, demos);
  const restored = await restoreLearner(ckptDir, setup.learner, setup.tokenizer, quiet);
  assert.ok(restored, `a checkpoint in ${ckptDir}`);
  const trained = meanLogProb(setup.learner, demos);
  setup.learner.dispose();
  return { loaded, trained };
}

/** Σ Â·log ratio over every recorded step: positive when the updates made positive-advantage steps likelier. */
function surrogateGain(runDir: string): { gain: number; steps: number } {
  const dir = join(runDir, "episodes");
  let gain = 0;
  let steps = 0;
  for (const f of readdirSync(dir).filter((n) => n.endsWith(".json"))) {
    const sample = JSON.parse(readFileSync(join(dir, f), "utf8")) as EpisodeSampleFile;
    for (const e of sample.episodes)
      for (const s of e.steps) {
        gain += s.advantage * Math.log(s.ratio);
        steps++;
      }
  }
  return { gain, steps };
}

/** The model tensors (not the optimiser's, not the KL reference's) of the newest checkpoint in `dir`, by name. */
async function checkpointTensorNames(dir: string): Promise<{ model: string[]; reference: string[]; adam: string[] }> {
  const newest = readdirSync(dir)
    .filter((f) => f.endsWith(".steppo"))
    .sort()
    .at(-1)!;
  const names = (await readCheckpoint(join(dir, newest))).tensors.map((t) => t.name);
  return {
    model: names.filter((n) => !n.startsWith("adam.") && !n.startsWith("reference.")).sort(),
    reference: names.filter((n) => n.startsWith("reference.")).map((n) => n.slice("reference.".length)),
    adam: names.filter((n) => n.startsWith("adam.")),
  };
}

test("token in, token out: the learner scores exactly the ids the workers sampled, with their log-probs; steps end at ']' or the end-of-turn", async () => {
  const root = mkdtempSync(join(tmpdir(), "steppo-hf-exact-"));
  const modelDir = join(root, "model");
  const size = await writeModelDir(modelDir);
  const job = hfJob("exact", { source: modelDir }, join(root, "ckpt"));
  const setup = await setUpRun(job, quiet);
  assert.ok(setup.tokenizer instanceof HfAgentTokenizer);
  assert.equal(setup.tokenizer.size, size);
  assert.equal(setup.config.vocabSize, size, "sampled over the tokenizer's ids, not the padded head's");
  const hf = setup.tokenizer.tokenizer;
  // The words each episode was handed, per episode in the order they started: the environment still speaks words.
  const handedByEpisode: string[][][] = [];
  const recording: Environment = Object.assign(Object.create(setup.env) as Environment, {
    start: async (task: Task): Promise<Episode> => {
      const handed: string[][] = [];
      handedByEpisode.push(handed);
      const episode = await setup.env.start(task);
      return Object.assign(Object.create(episode) as Episode, {
        step: (words: string[]) => {
          handed.push(words);
          return episode.step(words);
        },
      });
    },
  });
  const rng = new Rng(17);
  const requests = Array.from({ length: 8 }, (_, i) => ({ task: setup.env.sampleTask(rng, "train"), groupId: `g${i}`, trajId: `t${i}` }));
  const trajectories = await runEpisodes(recording, requests, setup.policy, setup.tokenizer, rng, {
    workerId: "w",
    policyVersion: 0,
    maxSteps: ENVIRONMENT.maxSteps,
    maxStepTokens: MAX_STEP_TOKENS,
    contextLength: setup.config.contextLength,
    temperature: 1,
    greedy: false,
  });
  assert.equal(trajectories.length, requests.length);
  const steps = trajectories.flatMap((t) => t.steps);
  const handed = handedByEpisode.flat();
  assert.equal(steps.length, handed.length);
  const eos = hf.eosId!;
  const ends = { bracket: 0, eos: 0, budget: 0 };
  steps.forEach((s, k) => {
    const ids = Array.from(s.actionIds);
    for (const id of ids) assert.ok(id < size, `step ${k}: id ${id} is past the tokenizer's ${size} ids`);
    const text = (n: number) => hf.decode(ids.slice(0, n), { skipSpecialTokens: true });
    assert.deepEqual(handed[k], text(ids.length).split(" ").filter(Boolean), `step ${k}: the environment got the sampled ids' text`);
    // Nothing before the last token ended the step; the last one did, or the budget ran out.
    for (let n = 1; n < ids.length; n++) assert.ok(!text(n).includes("]") && ids[n - 1] !== eos, `step ${k} should have ended after token ${n}`);
    if (text(ids.length).includes("]")) ends.bracket++;
    else if (ids.at(-1) === eos) ends.eos++;
    else {
      assert.equal(ids.length, MAX_STEP_TOKENS, `step ${k} ended without a stop`);
      ends.budget++;
    }
    // The context is the chat template's rendering: ChatML's user turn, then the assistant's header (the
    // word-level decoder joins tokens with spaces; the template's newlines are no tokens of it).
    assert.match(hf.decode(s.contextIds), /^<\|im_start\|> user question : .* <\|im_end\|> <\|im_start\|> assistant$/);
  });
  assert.ok(ends.bracket > 0, `some steps end at the tool call's ']' (${JSON.stringify(ends)})`);
  // The learner's log-probs of the same ids, from the full forward pass over the same columns, are the sampler's.
  const { logProbs } = setup.learner.scoreSteps(setup.learner.model, steps);
  steps.forEach((s, k) => {
    s.logProbs.forEach((lp, i) => {
      assert.ok(Math.abs(logProbs[k][i] - lp) < 1e-4, `step ${k} token ${i}: learner ${logProbs[k][i]}, worker ${lp}`);
    });
  });
  setup.learner.dispose();
});

test("steppo run trains a tiny Hugging Face model on the quickstart task: it learns, checkpoints and resumes", { timeout: 120_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), "steppo-hf-run-"));
  const modelDir = join(root, "model");
  await writeModelDir(modelDir);
  const ckpt = join(root, "ckpt");
  const job = hfJob("hf-run", { source: modelDir }, ckpt);
  const runDir = join(root, "run");
  const logs: string[] = [];
  const summary = await runJob(job, { runDir, log: (l) => logs.push(l), updates: 4 });
  assert.equal(summary.updates, 4);
  assert.ok(
    logs.some((l) => l.includes(`model ${modelDir}: qwen2, hidden 32, 2 layers, 4:2 heads`)),
    logs.join("\n"),
  );

  // The warm-up cloned the demonstrations: on episodes it never saw, their actions are far likelier than under the loaded model.
  const demos = await heldOutDemonstrations(job);
  const { loaded, trained } = await demoLogProbs(job, ckpt, demos);
  t.diagnostic(`demonstrations' log-prob per token: ${loaded.toFixed(3)} as loaded, ${trained.toFixed(3)} after the run`);
  assert.ok(trained > loaded + 1, `demonstrated actions' log-prob per token: ${loaded.toFixed(3)} as loaded, ${trained.toFixed(3)} after the run`);
  // The PPO updates moved the policy along the advantages of the batches it trained on.
  const { gain, steps } = surrogateGain(runDir);
  t.diagnostic(
    `Σ advantage · log ratio over ${steps} recorded steps: ${gain.toExponential(3)}; sampled success per update: ${summary.curve?.map((p) => p.trainSuccess).join(" ")}`,
  );
  assert.ok(steps > 0 && gain > 0, `Σ advantage · log ratio over ${steps} recorded steps: ${gain}`);

  // `steppo export` writes the trained policy as a model directory: a job pointing at it starts from the trained policy.
  const exported = join(root, "exported");
  assert.deepEqual(await exportTrainedPolicy(job, { checkpointDir: ckpt, out: exported, log: quiet }), { version: 4, layout: "model" });
  const fromExport = await setUpRun(hfJob("hf-exported", { source: exported }, join(root, "ckpt-exported")), quiet);
  assert.ok(Math.abs(meanLogProb(fromExport.learner, demos) - trained) < 1e-4, "the exported model is the trained policy");
  fromExport.learner.dispose();

  // The same command with more updates resumes from the last checkpoint.
  const resumed = await runJob(job, { runDir, log: quiet, updates: 5 });
  assert.equal(resumed.updates, 5);
  assert.ok(resumed.resumedFrom?.endsWith("ckpt-00000004.steppo"), `resumed from ${resumed.resumedFrom}`);

  // The checkpoint recorded the tokenizer: another chat template gives other ids, and resuming under it is refused.
  const configPath = join(modelDir, "tokenizer_config.json");
  const config = JSON.parse(readFileSync(configPath, "utf8"));
  writeFileSync(configPath, JSON.stringify({ ...config, chat_template: `{{ '<|im_start|>system\\nbe brief<|im_end|>\\n' }}${CHATML_TEMPLATE}` }));
  await assert.rejects(runJob(job, { runDir, log: quiet, updates: 6 }), /its tokenizer differs from this job's \(the model directory's tokenizer files/);
  // And the model directory's own files: other weights under the same path are refused too.
  writeFileSync(configPath, JSON.stringify(config));
  await writeModelDir(modelDir, 4);
  await assert.rejects(
    runJob(job, { runDir, log: quiet, updates: 6 }),
    /trained from another model \(hf-model sha256:.*were the files in spec\.model\.source replaced\?/,
  );
});

test(
  "with spec.model.lora only the adapters and the value head train, and they alone are checkpointed (the KL reference too)",
  { timeout: 120_000 },
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), "steppo-hf-lora-"));
    const modelDir = join(root, "model");
    await writeModelDir(modelDir);
    const ckpt = join(root, "ckpt");
    const lora = { rank: 4, alpha: 16, targetModules: ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"] };
    const job = hfJob("hf-lora", { source: modelDir, lora }, ckpt, { klCoef: 0.05 });
    const summary = await runJob(job, { runDir: join(root, "run"), log: quiet, updates: 2 });
    assert.equal(summary.updates, 2);

    const adapters = ["q_proj", "v_proj"].map((p) => `self_attn.${p}`).concat(["gate_proj", "up_proj", "down_proj"].map((p) => `mlp.${p}`));
    const expected = [0, 1]
      .flatMap((l) => adapters.flatMap((m) => ["A", "B"].map((ab) => `base_model.model.model.layers.${l}.${m}.lora_${ab}.weight`)))
      .concat(["v_head.summary.bias", "v_head.summary.weight"])
      .sort();
    const names = await checkpointTensorNames(ckpt);
    assert.deepEqual(names.model, expected);
    assert.deepEqual(names.reference.sort(), expected);
    assert.ok(
      names.adam.every((n) => expected.some((e) => n.includes(e))),
      `Adam moments for the trainable variables only: ${names.adam.slice(0, 3)}`,
    );

    // Cloning through the adapters alone still learns the demonstrations.
    const demos = await heldOutDemonstrations(job);
    const { loaded, trained } = await demoLogProbs(job, ckpt, demos);
    t.diagnostic(`with LoRA, demonstrations' log-prob per token: ${loaded.toFixed(3)} as loaded, ${trained.toFixed(3)} after the run`);
    assert.ok(
      trained > loaded + 0.5,
      `demonstrated actions' log-prob per token with LoRA: ${loaded.toFixed(3)} as loaded, ${trained.toFixed(3)} after the run`,
    );

    // Exported: a PEFT adapter by default; merged, a plain model that is the trained policy.
    const adapter = join(root, "adapter");
    assert.equal((await exportTrainedPolicy(job, { checkpointDir: ckpt, out: adapter, log: quiet })).layout, "adapter");
    assert.deepEqual(readdirSync(adapter).sort(), ["adapter_config.json", "adapter_model.safetensors", "value_head.safetensors"]);
    const merged = join(root, "merged");
    assert.equal((await exportTrainedPolicy(job, { checkpointDir: ckpt, out: merged, merged: true, log: quiet })).layout, "model");
    const fromMerged = await setUpRun(hfJob("hf-merged", { source: merged }, join(root, "ckpt-merged")), quiet);
    const mergedLogProb = meanLogProb(fromMerged.learner, demos);
    assert.ok(Math.abs(mergedLogProb - trained) < 1e-3, `merged export ${mergedLogProb} vs the LoRA policy ${trained}`);
    fromMerged.learner.dispose();
    await assert.rejects(exportTrainedPolicy(job, { checkpointDir: ckpt, out: modelDir, log: quiet }), /is the model directory itself/);
  },
);

test("the model files are hashed when the identity is first asked for, once: a rollout worker loading the model never reads them twice", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "steppo-hf-identity-")), "model");
  await writeModelDir(dir);
  await selectBackend("wasm", quiet);
  const { factory, loaded } = await loadRunPolicy(hfJob("identity", { source: dir }, dir).spec.model, { stopStrings: ["]"], seed: SEED, log: quiet });
  const atLoad = await modelIdentity(dir);
  // Other weights under the same path after loading: a hash made at load would still name the first ones.
  await writeModelDir(dir, 4);
  const identity = factory.identity!;
  const first = identity();
  assert.equal(identity(), first, "the second call shares the first call's hash");
  assert.deepEqual(await first, await modelIdentity(dir));
  assert.notDeepEqual(await first, atLoad);
  loaded.model.dispose();
});
