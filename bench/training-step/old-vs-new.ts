// The previous implementation against this one, on whole units of work: one PPO update of a quickstart
// batch and one behaviour-cloning epoch of the quickstart's demonstrations. Both learners start from the
// same seed and take turns on the same data; each rep runs each once.
import { sampleUpdateBatch } from "./quickstart-batch.ts";
import { Rng } from "../../core/rng.ts";
import type { Trajectory } from "../../core/trajectory.ts";
import type { StepPOJob } from "../../crds/steppojob.ts";
import { collectDemonstrations } from "../../learner/demonstrations.ts";
import { Learner } from "../../learner/learner.ts";
import { modelConfig, PolicyModel } from "../../policy/model.ts";
import { asTokenPolicy } from "../../policy/decoding.ts";
import { Tokenizer } from "../../policy/tokenizer.ts";
import { openEnvironment } from "../../envs/registry.ts";
import { join } from "node:path";
import { loadJobFile } from "../../crds/job-spec.ts";
import { baselineCheckout, SPEED_BASELINE_REV } from "./baseline.ts";

/** What both versions' models offer: the KV-cached decoder. */
interface DecoderLike {
  logits(): Float32Array;
  push(tokens: Int32Array): void;
  dispose(): void;
}

/** What both versions' learners offer: an update on trajectories, behaviour cloning on steps, the policy's decoder. */
interface LearnerLike {
  model: { decoder(contexts: Int32Array[]): DecoderLike };
  update(batch: Trajectory[]): unknown;
  /** Synchronous in the baseline, a promise here (it yields between minibatches). */
  warmup(steps: { contextIds: Int32Array; actionIds: Int32Array }[], epochs: number, minibatchSteps: number, learningRate: number): unknown;
  dispose(): void;
}

/**
 * One unit of work timed both ways per rep: wall-clock medians and their ratio (`speedup`), the median of the
 * reps' own ratios (each rep runs both versions back to back, so a rep's ratio shares its moment's load), and
 * the process's CPU time (user + system), which other jobs on the machine inflate far less than the wall clock.
 */
export interface Timings {
  previousMs: number;
  currentMs: number;
  speedup: number;
  /** Median over reps of previous / current wall time. */
  repSpeedup: number;
  previousCpuMs: number;
  currentCpuMs: number;
  /** Ratio of the median CPU times. */
  cpuSpeedup: number;
}

export interface SideBySide {
  baseline: string;
  reps: number;
  update: { episodes: number; steps: number } & Timings;
  cloningEpoch: { demonstrationSteps: number } & Timings;
  /** One rollout step of KV-cached decoding: the batch's first contexts, maxStepTokens greedy tokens each. */
  decoding: {
    rows: number;
    tokens: number;
    previousMs: number;
    currentMs: number;
    previousTokensPerSecond: number;
    currentTokensPerSecond: number;
    speedup: number;
  };
}

/** ms to decode `tokens` greedy tokens for every context (argmax in JS, the same for both versions). */
function decodeMs(learner: LearnerLike, contexts: Int32Array[], tokens: number, vocab: number): number {
  const t0 = performance.now();
  const decoder = learner.model.decoder(contexts);
  for (let t = 0; t < tokens; t++) {
    const logits = decoder.logits();
    const next = Int32Array.from(contexts, (_, b) => {
      let best = 0;
      for (let v = 1; v < vocab; v++) if (logits[b * vocab + v] > logits[b * vocab + best]) best = v;
      return best;
    });
    if (t < tokens - 1) decoder.push(next);
  }
  decoder.dispose();
  return performance.now() - t0;
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)];
}

/** Wall-clock and CPU milliseconds of f. */
function timed(f: () => void): { wall: number; cpu: number } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  f();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) / 1000 };
}

/** Wall-clock and CPU milliseconds of f, awaited (a synchronous f is timed the same way). */
async function timedAsync(f: () => unknown): Promise<{ wall: number; cpu: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { wall, cpu: (cpu.user + cpu.system) / 1000 };
}

/** Reps of one unit of work, both versions. */
interface Reps {
  previous: { wall: number; cpu: number }[];
  current: { wall: number; cpu: number }[];
}

function timings(x: Reps): Timings {
  const wall = (r: { wall: number }[]) => median(r.map((t) => t.wall));
  const cpu = (r: { cpu: number }[]) => median(r.map((t) => t.cpu));
  return {
    previousMs: wall(x.previous),
    currentMs: wall(x.current),
    speedup: wall(x.previous) / wall(x.current),
    repSpeedup: median(x.previous.map((p, i) => p.wall / x.current[i].wall)),
    previousCpuMs: cpu(x.previous),
    currentCpuMs: cpu(x.current),
    cpuSpeedup: cpu(x.previous) / cpu(x.current),
  };
}

export async function oldVsNew(reps: number, log: (line: string) => void): Promise<SideBySide> {
  const dir = baselineCheckout();
  const root = join(import.meta.dirname, "..", "..");
  const job: StepPOJob = loadJobFile(join(root, "examples", "quickstart.yaml"));
  const old = (await import(join(dir, "learner", "learner.ts"))) as { Learner: new (c: unknown, s: unknown) => LearnerLike };
  const oldParse = (await import(join(dir, "common", "job-spec.ts"))) as { parseJob: (raw: unknown, source: string) => StepPOJob };
  const env = await openEnvironment(job.spec.environment, job.spec.seed);
  const tokenizer = new Tokenizer(env.vocabulary());
  const config = modelConfig(job.spec.model, tokenizer.size);
  // tfjs variable names are global and both versions number their models from 1: take #1 here and free it.
  new PolicyModel(config, 0).dispose();
  const current = new Learner(config, job.spec);
  // The baseline's schema predates some fields: give it the job as written, with its own defaults.
  const previous = new old.Learner(config, oldParse.parseJob(loadRaw(job), "quickstart").spec);

  const batch = await sampleUpdateBatch(env, asTokenPolicy(current.model, config.vocabSize), tokenizer, job, config.contextLength);
  const w = job.spec.warmup;
  const demos = await collectDemonstrations(env, tokenizer, new Rng(8), {
    episodes: w.demonstrations,
    suboptimalFraction: w.suboptimalFraction,
    maxSteps: job.spec.environment.maxSteps,
    maxStepTokens: job.spec.environment.maxStepTokens,
    contextLength: config.contextLength,
  });
  const steps = batch.reduce((n, t) => n + t.steps.length, 0);
  log(`side by side with ${SPEED_BASELINE_REV} (${dir}): a ${batch.length}-episode batch (${steps} steps), ${demos.steps.length} demonstration steps`);

  const u: Reps = { previous: [], current: [] };
  const c: Reps = { previous: [], current: [] };
  const dec = { previous: [] as number[], current: [] as number[] };
  const contexts = batch.map((t) => t.steps[0].contextIds);
  const tokens = job.spec.environment.maxStepTokens;
  decodeMs(previous, contexts, 2, config.vocabSize); // first calls compile and allocate
  decodeMs(current, contexts, 2, config.vocabSize);
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < 3; i++) {
      dec.previous.push(decodeMs(previous, contexts, tokens, config.vocabSize));
      dec.current.push(decodeMs(current, contexts, tokens, config.vocabSize));
    }
    u.previous.push(timed(() => previous.update(batch)));
    u.current.push(timed(() => current.update(batch)));
    c.previous.push(await timedAsync(() => previous.warmup(demos.steps, 1, w.minibatchSteps, w.learningRate)));
    c.current.push(await timedAsync(() => current.warmup(demos.steps, 1, w.minibatchSteps, w.learningRate)));
    const last = (x: Reps) =>
      `${x.previous[r].wall.toFixed(0)} → ${x.current[r].wall.toFixed(0)} ms (CPU ${x.previous[r].cpu.toFixed(0)} → ${x.current[r].cpu.toFixed(0)})`;
    log(
      `rep ${r + 1}/${reps}: update ${last(u)}, cloning epoch ${last(c)}, ` +
        `decoding ${dec.previous.at(-1)?.toFixed(0)} → ${dec.current.at(-1)?.toFixed(0)} ms`,
    );
  }
  previous.dispose();
  current.dispose();
  const side = (x: { previous: number[]; current: number[] }) => ({
    previousMs: median(x.previous),
    currentMs: median(x.current),
    speedup: median(x.previous) / median(x.current),
  });
  return {
    baseline: SPEED_BASELINE_REV,
    reps,
    update: { episodes: batch.length, steps, ...timings(u) },
    cloningEpoch: { demonstrationSteps: demos.steps.length, ...timings(c) },
    decoding: {
      rows: contexts.length,
      tokens,
      ...side(dec),
      previousTokensPerSecond: (contexts.length * tokens) / (median(dec.previous) / 1000),
      currentTokensPerSecond: (contexts.length * tokens) / (median(dec.current) / 1000),
    },
  };
}

/** The job as a plain manifest without the fields the baseline's schema does not know (added since 1bb9297). */
function loadRaw(job: StepPOJob): unknown {
  const raw = JSON.parse(JSON.stringify(job)) as {
    spec: Record<string, unknown> & { algorithm: Record<string, unknown>; environment: { config?: Record<string, unknown> } };
  };
  delete raw.spec.algorithm.criticWarmup;
  delete raw.spec.results;
  return raw;
}
