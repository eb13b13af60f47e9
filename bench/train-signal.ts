// Does RL improve the training tasks? One benchmark row (bench/algos jobFor: same job, same warm-up) trained
// from a warm start cached under /tmp/ws, with per-update diagnostics, evaluated on TRAINING tasks only:
// the benchmark's sampled set of 100 training tasks and greedy on 100 other distinct training tasks. It never
// evaluates the test split or an OOD family, so it can be used to diagnose and choose settings (issue #13).
//   node --import tsx bench/train-signal.ts '{"family":"paper-search","row":"steppo","seed":1,"budget":3000,"evalEvery":10}'
// Optional keys: settings (AlgosSettings fields), algorithm, warmup, env (environment fields / config),
// keep (write every batch's episodes as text), quiet, tag, trainEval (false: skip the training sets), validation (also greedy success on the bench's
// validation set at every evaluation: held out from train and from test, so it may choose settings; never test). Per-update CSV and episodes go to /tmp/runs/<tag>*,
// and the evaluation points to /tmp/runs/<tag>.json, which bench/train-signal/collect.ts assembles into a results file.
// A diagnostic, not a runtime: it drives runEpisodes and learner.update itself, to print columns the run loop does
// not record (truncation share, mean |advantage|, groups with variance). Unlike runtime/run-loop.ts it skips the
// intake checks, environment-fault handling and the KL reference snapshot (so no `klCoef`), which the default
// settings never exercise; a run to report goes through `steppo run` or bench/algos.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { Rng } from "../core/rng.ts";
import type { Trajectory } from "../core/trajectory.ts";
import { DEFAULT_SETTINGS, familyEnvironment, jobFor, type AlgosSettings, type Family } from "./algos/settings.ts";
import { ROWS } from "./algos/rows.ts";
import { setUpRun } from "../learner/run-setup.ts";
import { warmUp, warmUpCritic } from "../learner/run-phases.ts";
import { restoreLearner, saveLearner } from "../learner/checkpoint.ts";
import { successRate, distinctTasks, evalSets, VALIDATION_SET } from "../learner/evaluation.ts";
import { runEpisodes, type EpisodeRequest } from "../workers/agent-loop.ts";
import { createHash } from "node:crypto";

const arg = JSON.parse(process.argv[2] ?? "{}");
const family: Family = arg.family ?? "paper-search";
const row = ROWS.find((r) => r.id === (arg.row ?? "steppo"))!;
const seed: number = arg.seed ?? 1;
const budget: number = arg.budget ?? 3000;
const settings: AlgosSettings = { ...DEFAULT_SETTINGS, ...(arg.settings ?? {}) };
if (arg.algorithm) settings.algorithm = { ...DEFAULT_SETTINGS.algorithm, ...arg.algorithm };
if (arg.warmup) settings.warmup = { ...DEFAULT_SETTINGS.warmup, ...arg.warmup };
const job = jobFor(settings, family, row, seed, undefined, arg.env ? familyEnvironment(family, arg.env) : undefined);
if (arg.spec) {
  // One level deep: spec.algorithm, spec.rollout, … fields over the benchmark job's.
  const specRecord = job.spec as unknown as Record<string, object>;
  for (const [k, v] of Object.entries(arg.spec)) specRecord[k] = { ...specRecord[k], ...(v as object) };
}
const log = arg.verbose
  ? (l: string) => console.log(l)
  : (l: string) => {
      if (/warm-up|critic/.test(l)) console.log(l);
    };
const t0 = Date.now();
const setup = await setUpRun(job, () => {});
const { env, tokenizer, learner, policy } = setup;
const spec = job.spec;
const wsKey = createHash("sha1")
  .update(JSON.stringify({ env: spec.environment, warmup: spec.warmup, model: spec.model, seed, family }))
  .digest("hex")
  .slice(0, 10);
const wsDir = `/tmp/ws/${family}-s${seed}-${wsKey}`;
let restored = false;
if (existsSync(wsDir)) restored = !!(await restoreLearner(wsDir, learner, tokenizer, () => {}));
if (!restored) {
  await warmUp(env, tokenizer, learner, log);
  mkdirSync(wsDir, { recursive: true });
  await saveLearner(wsDir, 1, learner, tokenizer, {});
  console.log(`warm start saved ${wsDir} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
} else console.log(`warm start restored ${wsDir}`);
learner.version = 0;

// TRAIN-only evaluation sets: the bench's sampled train set (same draw as evalSets), and greedy on 100 distinct training tasks.
const trainSampled = {
  name: "train",
  tasks: Array.from(
    { length: 100 },
    (
      (rng) => () =>
        env.sampleTask(rng, "train")
    )(new Rng(seed * 7919 + 2)),
  ),
  decoding: "sampled" as const,
};
const trainGreedy = {
  name: "train-greedy",
  tasks: distinctTasks(
    (
      (rng) => () =>
        env.sampleTask(rng, "train")
    )(new Rng(seed * 7919 + 77)),
    100,
  ),
  decoding: "greedy" as const,
};
// The bench's own validation set (same draw as a benchmark run of this seed), only when asked for.
const validationSet = arg.validation ? evalSets(env, seed, settings.evalEpisodes).find((s) => s.name === VALIDATION_SET) : undefined;
// `trainEval: false` skips both training sets (NaN in the log), e.g. for a budget study read on validation.
const trainEval: boolean = arg.trainEval ?? true;
const evalTrain = async () => ({
  sampled: trainEval ? await successRate(env, trainSampled, policy, tokenizer, spec, setup.config.contextLength) : Number.NaN,
  greedy: trainEval ? await successRate(env, trainGreedy, policy, tokenizer, spec, setup.config.contextLength) : Number.NaN,
  validation: validationSet ? await successRate(env, validationSet, policy, tokenizer, spec, setup.config.contextLength) : Number.NaN,
});
/** One evaluation point of the run, as bench/train-signal/collect.ts assembles them into a results file. */
interface Point {
  update: number;
  envSteps: number;
  validation: number | null;
  /** Mean sampled training-batch success over the updates since the previous point (null at update 0). */
  batchSuccess: number | null;
}
const points: Point[] = [];
const batchSuccesses: number[] = [];
const addPoint = (e: { validation: number }) => {
  const since = batchSuccesses.splice(0);
  points.push({
    update: learner.version,
    envSteps,
    validation: Number.isNaN(e.validation) ? null : e.validation,
    batchSuccess: since.length === 0 ? null : Number((since.reduce((a, b) => a + b, 0) / since.length).toFixed(3)),
  });
};
const init = await evalTrain();
let lastEval = init;
console.log(`init train sampled ${init.sampled.toFixed(2)} greedy ${init.greedy.toFixed(2)} validation ${init.validation.toFixed(2)}`);
await warmUpCritic(env, tokenizer, learner, policy, log);

const rng = new Rng(seed * 1000);
let envSteps = 0;
let counter = 0;
addPoint(init);
const rows: string[] = ["update,envSteps,batchSuccess,meanLen,truncFrac,advAbs,groupsWithVar,approxKl,clipFrac,entropy,ev,valueLoss,gradNorm,sec"];
const G = spec.rollout.groupSize;
const groups = spec.rollout.episodesPerUpdate / G;
const allBatches: Trajectory[][] = [];
const evalEvery: number = arg.evalEvery ?? 0;
const mid: string[] = [];
while (envSteps < budget) {
  const tu = Date.now();
  const reqs: EpisodeRequest[] = [];
  for (let g = 0; g < groups; g++) {
    const task = env.sampleTask(rng, "train");
    const groupId = `g${counter}`;
    for (let k = 0; k < G; k++) reqs.push({ task, groupId, trajId: `e${counter++}` });
  }
  const trajs = await runEpisodes(env, reqs, policy, tokenizer, rng, {
    workerId: "w",
    policyVersion: learner.version,
    maxSteps: spec.environment.maxSteps,
    maxStepTokens: spec.environment.maxStepTokens,
    contextLength: setup.config.contextLength,
    temperature: spec.rollout.temperature,
    greedy: false,
  });
  if (arg.keep) allBatches.push(trajs);
  const st = learner.update(trajs);
  envSteps += st.steps;
  const succ = trajs.filter((t) => t.success).length / trajs.length;
  batchSuccesses.push(succ);
  const byGroup = new Map<string, number[]>();
  for (const t of trajs) byGroup.set(t.groupId, [...(byGroup.get(t.groupId) ?? []), t.success ? 1 : 0]);
  const gv = [...byGroup.values()].filter((r) => r.length > 1 && Math.min(...r) !== Math.max(...r)).length / byGroup.size;
  const trunc = trajs.filter((t) => t.truncated).length / trajs.length;
  const len = trajs.reduce((s, t) => s + t.steps.length, 0) / trajs.length;
  const line = [
    learner.version,
    envSteps,
    succ.toFixed(3),
    len.toFixed(2),
    trunc.toFixed(2),
    st.meanAdvantageAbs.toFixed(3),
    gv.toFixed(2),
    st.approxKl.toExponential(2),
    st.clipFraction.toFixed(3),
    st.entropy.toFixed(3),
    st.explainedVariance?.toFixed(2) ?? "",
    st.valueLoss.toFixed(4),
    st.gradNorm.toFixed(3),
    ((Date.now() - tu) / 1000).toFixed(1),
  ].join(",");
  rows.push(line);
  if (!arg.quiet) console.log(line);
  if (evalEvery && learner.version % evalEvery === 0) {
    const e = await evalTrain();
    lastEval = e;
    addPoint(e);
    mid.push(
      `u${learner.version} (${envSteps} env steps): sampled ${e.sampled.toFixed(2)} greedy ${e.greedy.toFixed(2)} validation ${e.validation.toFixed(2)}`,
    );
    console.log(`  eval ${mid.at(-1)}`);
  }
}
// The last update's evaluation already ran when it fell on evalEvery: it is reused, not run again.
const evaluatedLast = points.at(-1)?.update === learner.version;
const fin = evaluatedLast ? lastEval : await evalTrain();
if (!evaluatedLast) addPoint(fin);
// The learning rate is in the default tag: a probe at another rate must not overwrite this run's files.
const tag = arg.tag ?? `${family}-${row.id}-lr${learner.algorithm.learningRate}-s${seed}`;
mkdirSync("/tmp/runs", { recursive: true });
writeFileSync(`/tmp/runs/${tag}.csv`, rows.join("\n") + "\n");
const summary = {
  tag,
  family,
  row: row.id,
  seed,
  learningRate: learner.algorithm.learningRate,
  clip: learner.algorithm.clip,
  budget,
  points,
  wallSeconds: Math.round((Date.now() - t0) / 1000),
};
writeFileSync(`/tmp/runs/${tag}.json`, `${JSON.stringify(summary)}\n`);
if (arg.keep)
  writeFileSync(
    `/tmp/runs/${tag}-batches.json`,
    JSON.stringify(
      allBatches.map((b) =>
        b.map((t) => ({
          task: t.taskId,
          fam: t.family,
          success: t.success,
          steps: t.steps.map((s) => ({ ctx: tokenizer.decode(s.contextIds).join(" "), act: tokenizer.decode(s.actionIds).join(" "), r: s.reward, d: s.done })),
        })),
      ),
    ),
  );
const bs = rows.slice(1).map((r) => Number(r.split(",")[2]));
const m = (a: number[]) => a.reduce((s, x) => s + x, 0) / Math.max(1, a.length);
console.log(
  `RESULT ${tag}: updates ${learner.version} envSteps ${envSteps}; train sampled ${init.sampled.toFixed(2)} -> ${fin.sampled.toFixed(2)}, greedy ${init.greedy.toFixed(2)} -> ${fin.greedy.toFixed(2)}, validation ${init.validation.toFixed(2)} -> ${fin.validation.toFixed(2)}; batch success first5 ${m(bs.slice(0, 5)).toFixed(3)} last5 ${m(bs.slice(-5)).toFixed(3)}; wall ${((Date.now() - t0) / 1000).toFixed(0)} s`,
);
