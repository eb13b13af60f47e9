// Synchronous vs asynchronous training with 4 rollout workers and a simulated tool latency: the same job
// (same seed, same budget of updates and episodes) run as real processes against a real nats-server with
// maxPolicyLag 0 (on-policy: workers wait while the learner updates) and maxPolicyLag 2 (workers keep
// generating; staleness bounded at admission, corrected by truncated importance weights), both from one
// shared warm start. Wall times and final greedy success rates side by side → bench/results/async.json.
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { runDistributed } from "../cli/distributed-run.ts";
import { loadJobFile } from "../crds/job-spec.ts";
import { selectBackend } from "../policy/backend.ts";
import { saveLearner } from "../learner/checkpoint.ts";
import { warmUp } from "../learner/run-phases.ts";
import { evalSets, successRate } from "../learner/evaluation.ts";
import { Learner } from "../learner/learner.ts";
import type { DistributedSummary } from "../runtime/learner-process.ts";
import { modelConfig } from "../policy/model.ts";
import { asTokenPolicy } from "../policy/decoding.ts";
import { Tokenizer } from "../policy/tokenizer.ts";
import { createEnvironment } from "../envs/registry.ts";
import { NatsServer } from "../test/support/nats-server.ts";

const WORKERS = 4;
const UPDATES = Number(process.env.STEPPO_BENCH_UPDATES ?? 20);
const TOOL_LATENCY_MS = [50, 200];
const ASYNC_LAG = 2;

function jobYaml(name: string, maxPolicyLag: number): string {
  return `apiVersion: steppo.dev/v1alpha1
kind: StepPOJob
metadata:
  name: ${name}
spec:
  seed: 11
  algorithm: {epochs: 2, minibatchSteps: 64, learningRate: 0.0003}
  model: {preset: tiny}
  environment:
    name: multihop-qa
    config: {people: 48, films: 24, companies: 12, cities: 10, freshFacts: 1}
    maxSteps: 5
    maxStepTokens: 24
    toolLatencyMs: [${TOOL_LATENCY_MS.join(", ")}]
  warmup: {enabled: true, demonstrations: 600, suboptimalFraction: 0.5, epochs: 6, learningRate: 0.003, minibatchSteps: 32}
  rollout: {episodesPerUpdate: 32, replicas: ${WORKERS}, temperature: 0.5}
  training: {updates: ${UPDATES}, maxPolicyLag: ${maxPolicyLag}, evalEvery: 1000, evalEpisodes: 100}
  checkpoint: {interval: 1000, keep: 1}
`;
}

/**
 * Behaviour-cloning warm-up done once, in this process, and saved as a checkpoint before the first update:
 * both modes resume from the very same policy (and skip the warm-up, which would be identical anyway).
 */
async function warmStart(jobFile: string, dir: string): Promise<{ seconds: number; initial: Record<string, number> }> {
  const t0 = Date.now();
  const spec = loadJobFile(jobFile).spec;
  await selectBackend(spec.learner.backend, () => {});
  const env = createEnvironment(spec.environment, spec.seed);
  const tokenizer = new Tokenizer(env.vocabulary());
  const cfg = modelConfig(spec.model, tokenizer.size);
  const learner = new Learner(cfg, spec);
  const demonstrations = await warmUp(env, tokenizer, learner, () => {});
  const initial: Record<string, number> = {};
  for (const set of evalSets(env, spec.seed, spec.training.evalEpisodes)) {
    initial[set.name] = await successRate(env, set, asTokenPolicy(learner.model), tokenizer, spec, cfg.contextLength);
  }
  await saveLearner(dir, 1, learner, tokenizer, { initial, demonstrations });
  learner.model.dispose();
  return { seconds: (Date.now() - t0) / 1000, initial };
}

interface ModeResult {
  maxPolicyLag: number;
  wallSeconds: number;
  /** Sum of per-update times (waiting for samples + training + weight publish): the part asynchrony can shorten. */
  trainingSeconds: number;
  waitSecondsPerUpdate: number;
  successRate: { initial: number; final: number };
  /** Greedy success on the held-out test split (fresh facts). */
  test: { initial: number; final: number };
  envSteps: number;
  policyLag: { mean: number; max: number };
  trajectories: DistributedSummary["trajectories"];
}

export async function main(): Promise<void> {
  const server = await NatsServer.start();
  const dir = mkdtempSync(join(tmpdir(), "steppo-bench-async-"));
  const stamp = Date.now().toString(36);
  const results: Record<string, ModeResult> = {};
  try {
    const warmFile = join(dir, "warm.yaml");
    writeFileSync(warmFile, jobYaml("warm", 0));
    const warmDir = join(dir, "warm-start");
    const warm = await warmStart(warmFile, warmDir);
    process.stderr.write(`  shared warm start: behaviour cloning in ${warm.seconds.toFixed(0)} s, greedy test success ${warm.initial.test.toFixed(2)}\n`);
    for (const [mode, lag] of [
      ["sync", 0],
      ["async", ASYNC_LAG],
    ] as const) {
      const name = `bench-${mode}-${stamp}`;
      const jobFile = join(dir, `${name}.yaml`);
      writeFileSync(jobFile, jobYaml(name, lag));
      cpSync(warmDir, join(dir, name, "checkpoints"), { recursive: true });
      const t0 = Date.now();
      const s = await runDistributed({
        jobFile,
        natsUrl: server.url,
        workers: WORKERS,
        runDir: join(dir, name),
        log: (line) => {
          if (process.env.STEPPO_BENCH_VERBOSE) process.stderr.write(`${line}\n`);
        },
        env: { STEPPO_METRICS_PORT: "off" },
      });
      results[mode] = {
        maxPolicyLag: lag,
        wallSeconds: (Date.now() - t0) / 1000,
        trainingSeconds: s.curve.slice(1).reduce((n, p) => n + p.seconds, 0),
        waitSecondsPerUpdate: s.distributed.waitSecondsPerUpdate,
        successRate: { initial: s.successRate.initial, final: s.successRate.final },
        test: { initial: s.test.initial, final: s.test.final },
        envSteps: s.envSteps,
        policyLag: s.distributed.policyLag,
        trajectories: s.trajectories,
      };
      const r = results[mode];
      process.stderr.write(
        `  ${mode} (maxPolicyLag ${lag}): ${r.trainingSeconds.toFixed(1)} s of updates (${r.wallSeconds.toFixed(1)} s wall), success ${r.successRate.initial.toFixed(2)} → ${r.successRate.final.toFixed(2)}, held-out test ${r.test.initial.toFixed(2)} → ${r.test.final.toFixed(2)}\n`,
      );
    }
    const result = {
      benchmark: "async",
      description: `The same job (${UPDATES} updates × 32 episodes, quickstart model on multihop-qa with fresh facts, sampled at 0.5, 4 workers, tool latency ${TOOL_LATENCY_MS.join("–")} ms per call) synchronous (maxPolicyLag 0) vs asynchronous (maxPolicyLag ${ASYNC_LAG}), processes against a real nats-server. trainingSeconds sums the learner's per-update times (waiting for samples included); wallSeconds adds process start-up and evaluations, the same in both. Both resume from one shared behaviour-cloning warm start (warmStart).`,
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      updates: UPDATES,
      workers: WORKERS,
      toolLatencyMs: TOOL_LATENCY_MS,
      warmStart: { seconds: warm.seconds, initialSuccess: warm.initial },
      sync: results.sync,
      async: results.async,
      speedup: {
        training: Number((results.sync.trainingSeconds / results.async.trainingSeconds).toFixed(2)),
        wall: Number((results.sync.wallSeconds / results.async.wallSeconds).toFixed(2)),
      },
    };
    const out = join(dirname(fileURLToPath(import.meta.url)), "results", "async.json");
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stderr.write(`  async: speed-up ${result.speedup.training}× on the updates (${result.speedup.wall}× wall) → ${out}\n`);
  } finally {
    await server.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
}
