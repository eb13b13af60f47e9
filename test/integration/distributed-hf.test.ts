// `steppo run --nats` on a Hugging Face-format model with LoRA: the learner and two rollout worker processes
// each load the same model directory (a tiny Qwen2 and a word-level tokenizer written here); the workers check
// the learner's tokenizer identity and dimensions, and the weight store carries the adapters and the value head
// alone. A second job pointing its workers at another model is refused by the workers, naming both.
import assert from "node:assert/strict";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadJobFile } from "../../crds/job-spec.ts";
import { openEnvironment } from "../../envs/registry.ts";
import type { DistributedSummary } from "../../runtime/learner-process.ts";
import { natsRunFixture } from "../support/nats-run-fixture.ts";
import { exitCode, startSteppo } from "../support/steppo-process.ts";
import { TINY_QWEN2, writeTinyModel } from "../support/tiny-hf-model.ts";
import { writeWordTokenizer } from "../support/word-tokenizer.ts";

const fx = natsRunFixture();
const SEED = 3;

function jobYaml(name: string, modelDir: string): string {
  return `apiVersion: steppo.dev/v1alpha1
kind: StepPOJob
metadata:
  name: ${name}
spec:
  seed: ${SEED}
  algorithm: {epochs: 1, minibatchSteps: 16, criticWarmup: {episodes: 8}}
  model: {source: ${modelDir}, contextLength: 160, lora: {rank: 2, alpha: 4, targetModules: [q_proj, v_proj]}}
  environment: {name: multihop-qa, maxSteps: 3, maxStepTokens: 12}
  warmup: {enabled: true, demonstrations: 20, epochs: 1, minibatchSteps: 16}
  rollout: {episodesPerUpdate: 8, replicas: 2}
  training: {updates: 2, maxPolicyLag: 1, evalEvery: 100, evalEpisodes: 4}
  checkpoint: {interval: 1, keep: 2}
`;
}

async function writeModelDir(dir: string, jobFile: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const job = loadJobFile(jobFile);
  const env = await openEnvironment(job.spec.environment, SEED);
  const size = writeWordTokenizer(dir, env.vocabulary());
  await writeTinyModel(dir, { ...TINY_QWEN2, valueHead: false, vocabSize: size, dtype: "BF16", seed: 1, maxPositions: 256 });
}

/** A job `name` over a tiny model written to `<workspace>/<model>`: the job file's and the model's paths. */
async function jobWithModel(name: string, model: string): Promise<{ jobFile: string; modelDir: string }> {
  const modelDir = join(fx.ws.dir, model);
  const jobFile = join(fx.ws.dir, `${name}.yaml`);
  writeFileSync(jobFile, jobYaml(name, modelDir));
  await writeModelDir(modelDir, jobFile);
  return { jobFile, modelDir };
}

describe("a Hugging Face model over NATS (real processes, real nats-server)", { timeout: 180_000 }, () => {
  it("trains with LoRA: the workers load the directory, the weight store carries the adapters alone", async () => {
    const { jobFile, modelDir } = await jobWithModel("hf-dist", "model");
    const runDir = join(fx.ws.dir, "run-hf");
    const run = startSteppo("run", ["run", jobFile, "--nats", fx.server.url, "--workers", "2", "--run-dir", runDir]);
    assert.equal(await exitCode(run, 150_000), 0, run.lines.slice(-30).join("\n"));
    const summary = JSON.parse(readFileSync(join(runDir, "summary.json"), "utf8")) as DistributedSummary;
    assert.equal(summary.updates, 2);
    assert.equal(summary.trajectories.consumed, 2 * 8, JSON.stringify(summary.trajectories));
    // 2 layers × (q [2×32, 32×2], v [2×32, 16×2]) adapters and the 33-value head: 801 values, against the model's ~23k.
    const loaded = run.lines.filter((l) => /\[worker-\d\].*policy v\d+ loaded from the object store/.test(l));
    assert.ok(loaded.length > 0, run.lines.slice(-30).join("\n"));
    for (const l of loaded) {
      const bytes = Number(/\((\d+) bytes/.exec(l)?.[1]);
      assert.ok(bytes > 0 && bytes < 20_000, `a LoRA version is its adapters and value head, not the model's ~90 kB: ${l}`);
    }
    assert.ok(run.lines.some((l) => l.includes("[learner]") && l.includes(`model ${modelDir}: qwen2`)));
  });

  it("a worker whose directory holds another model is refused by the vocabulary check, naming both", async () => {
    const { jobFile, modelDir } = await jobWithModel("hf-other", "model-b");
    // The worker's job file names a copy of the directory whose chat template differs: other ids for the same text.
    const otherDir = join(fx.ws.dir, "model-c");
    cpSync(modelDir, otherDir, { recursive: true });
    const configPath = join(otherDir, "tokenizer_config.json");
    const config = JSON.parse(readFileSync(configPath, "utf8"));
    writeFileSync(configPath, JSON.stringify({ ...config, chat_template: `{{ 'system' }}${config.chat_template}` }));
    const workerJob = join(fx.ws.dir, "hf-other-worker.yaml");
    writeFileSync(workerJob, jobYaml("hf-other", otherDir));
    const learner = startSteppo("learner", ["learner", "--job", jobFile, "--nats", fx.server.url, "--run-dir", join(fx.ws.dir, "run-other")]);
    const worker = startSteppo("worker", ["worker", "--job", workerJob, "--nats", fx.server.url, "--id", "w0"]);
    const code = await exitCode(worker, 120_000);
    learner.kill("SIGKILL");
    assert.notEqual(code, 0);
    assert.ok(
      worker.lines.some((l) => l.includes("vocabulary mismatch with the learner")),
      worker.lines.slice(-20).join("\n"),
    );
  });
});
