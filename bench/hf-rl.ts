// Does StepPO make a Hugging Face-format policy better than its warm start? The quickstart job
// (examples/quickstart.yaml: multihop-qa, 600 demonstrations, 32 episodes an update) with `spec.model.source`
// pointing at a tiny random Qwen2 that this script writes (no model hub is reachable: hidden 64, 2 layers,
// 4 query heads sharing 2 key/value heads, BF16, over a word-level tokenizer of the environment's words),
// trained through the one run loop (runtime/run-job.ts) for 100 updates (by default) on each seed. Read: greedy test
// success at the end minus at update 0 (the behaviour-cloned warm start), paired by seed, with a 95%
// t-interval; validation the same way. → bench/results/hf-rl.json
//
// `npm run bench -- hf-rl` (2–4 min a seed on one core: ~2 with 6 cloning epochs, ~3.5 with 15; runs only when named).
// STEPPO_BENCH_SEEDS (default 2,3,4,5,6), STEPPO_BENCH_UPDATES (default 100) and STEPPO_BENCH_WARMUP_EPOCHS
// (default: the quickstart's 6) change the design; STEPPO_BENCH_OUT names the result file (default hf-rl).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { positiveInt } from "../core/process-config.ts";
import { loadJobFile } from "../crds/job-spec.ts";
import type { StepPOJob } from "../crds/steppojob.ts";
import { openEnvironment } from "../envs/registry.ts";
import { runJob } from "../runtime/run-job.ts";
import { writeTinyModel } from "../test/support/tiny-hf-model.ts";
import { writeWordTokenizer } from "../test/support/word-tokenizer.ts";
import { pairedInterval } from "./algos/paired.ts";
import { runHeader } from "./support/run-header.ts";

export const runByDefault = false;

const here = dirname(fileURLToPath(import.meta.url));
/** The design's knobs, read when the bench runs (not at import: `npm run bench` imports every module). */
interface Design {
  seeds: number[];
  updates: number;
  /** Cloning epochs; undefined: the quickstart's. */
  warmupEpochs?: number;
  /** The result file's name under bench/results. */
  out: string;
}

function readDesign(env: NodeJS.ProcessEnv): Design {
  // An empty variable is unset, as for the processes' own variables (core/process-config.ts).
  const set = (name: string) => (env[name]?.trim() ? env[name]?.trim() : undefined);
  const out = env.STEPPO_BENCH_OUT ?? "hf-rl";
  if (!/^[\w.-]+$/.test(out)) throw new Error(`STEPPO_BENCH_OUT: a file name under bench/results, got "${out}"`);
  return {
    seeds: (set("STEPPO_BENCH_SEEDS") ?? "2,3,4,5,6").split(",").map((s) => positiveInt(s, "each of STEPPO_BENCH_SEEDS", Number.NaN)),
    updates: positiveInt(set("STEPPO_BENCH_UPDATES"), "STEPPO_BENCH_UPDATES", 100),
    warmupEpochs:
      set("STEPPO_BENCH_WARMUP_EPOCHS") === undefined ? undefined : positiveInt(set("STEPPO_BENCH_WARMUP_EPOCHS"), "STEPPO_BENCH_WARMUP_EPOCHS", Number.NaN),
    out,
  };
}
const MODEL = { modelType: "qwen2", hiddenSize: 64, layers: 2, heads: 4, kvHeads: 2, intermediateSize: 128, tie: false, dtype: "BF16" } as const;
const CONTEXT_LENGTH = 256;

interface SeedResult {
  seed: number;
  parameters: number;
  /** Greedy held-out test success: the warm start (update 0) and after the last update. */
  test: { initial: number; final: number };
  validation: { initial: number; final: number };
  /** Sampled training-task success at the rollout temperature. */
  train: { initial: number; final: number };
  /** Greedy test success at every evaluation (update 0, evalEvery, …, the last). */
  testCurve: { update: number; test: number }[];
  wallSeconds: number;
}

/** The quickstart job for `seed`, its policy the Hugging Face model in `modelDir`. */
function hfQuickstart(design: Design, seed: number, modelDir: string): StepPOJob {
  const job = loadJobFile(join(here, "..", "examples", "quickstart.yaml"));
  job.metadata.name = `hf-rl-seed${seed}`;
  job.spec.seed = seed;
  job.spec.model = { ...job.spec.model, source: modelDir, contextLength: CONTEXT_LENGTH };
  job.spec.training = { ...job.spec.training, updates: design.updates, evalEvery: 10 };
  job.spec.checkpoint = { ...job.spec.checkpoint, interval: design.updates };
  if (design.warmupEpochs) job.spec.warmup = { ...job.spec.warmup, epochs: design.warmupEpochs };
  return job;
}

async function runSeed(design: Design, seed: number, work: string): Promise<SeedResult> {
  const modelDir = join(work, `model-${seed}`);
  mkdirSync(modelDir, { recursive: true });
  const probe = hfQuickstart(design, seed, modelDir);
  const env = await openEnvironment(probe.spec.environment, seed);
  const vocabSize = writeWordTokenizer(modelDir, env.vocabulary());
  await writeTinyModel(modelDir, { ...MODEL, vocabSize, seed, maxPositions: CONTEXT_LENGTH });
  const log = (line: string) => process.stderr.write(`  [seed ${seed}] ${line}\n`);
  const s = await runJob(probe, { runDir: join(work, `run-${seed}`), log });
  if (s.validation?.initial === undefined) throw new Error("hf-rl: the run reported no validation success");
  return {
    seed,
    parameters: s.parameters,
    test: s.test,
    validation: { initial: s.validation.initial, final: s.validation.final },
    train: { initial: s.successRate.initial, final: s.successRate.final },
    testCurve: s.curve.filter((p) => p.testSuccess !== null).map((p) => ({ update: p.update, test: p.testSuccess as number })),
    wallSeconds: s.wallSeconds,
  };
}

export async function main(): Promise<void> {
  const design = readDesign(process.env);
  const started = Date.now();
  const load = loadavg()[0];
  const work = mkdtempSync(join(tmpdir(), "steppo-hf-rl-"));
  const runs: SeedResult[] = [];
  try {
    for (const seed of design.seeds) {
      const r = await runSeed(design, seed, work);
      process.stderr.write(
        `hf-rl seed ${seed}: test ${r.test.initial.toFixed(2)} → ${r.test.final.toFixed(2)}, validation ${r.validation.initial.toFixed(2)} → ${r.validation.final.toFixed(2)}, ` +
          `train ${r.train.initial.toFixed(2)} → ${r.train.final.toFixed(2)} (${r.wallSeconds.toFixed(0)} s)\n`,
      );
      runs.push(r);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  const gain = (k: "test" | "validation" | "train") => pairedInterval(runs.map((r) => r[k].final - r[k].initial));
  const paired = { test: gain("test"), validation: gain("validation"), train: gain("train") };
  const result = {
    benchmark: "hf-rl",
    description:
      "StepPO on examples/quickstart.yaml with spec.model.source a tiny random Qwen2 in the Hugging Face layout written by the bench " +
      `(${JSON.stringify(MODEL)}, contextLength ${CONTEXT_LENGTH}, a word-level tokenizer.json of the environment's words with a ChatML template), ` +
      `${design.updates} updates per seed through the embedded run loop. paired: final − initial (update 0, the warm start) per seed, mean with a 95% t-interval; ` +
      "test and validation greedy on their distinct held-out tasks, train sampled.",
    ...runHeader(),
    loadAtStart: load,
    updates: design.updates,
    warmupEpochs: design.warmupEpochs ?? "the quickstart's",
    seeds: design.seeds,
    model: MODEL,
    runs,
    paired,
    totalWallSeconds: (Date.now() - started) / 1000,
  };
  const out = join(here, "results", `${design.out}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  const fmt = (p: { mean: number; low: number | null; high: number | null }) =>
    `${p.mean >= 0 ? "+" : ""}${p.mean.toFixed(3)} [${p.low?.toFixed(3) ?? "n/a"}, ${p.high?.toFixed(3) ?? "n/a"}]`;
  process.stderr.write(`hf-rl: test final − warm start ${fmt(paired.test)}; validation ${fmt(paired.validation)}; train ${fmt(paired.train)} → ${out}\n`);
}
